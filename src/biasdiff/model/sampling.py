"""Classifier-free-guided ancestral DDPM and DDIM sampling for a word-conditioned ε-model.

The model is any torch module with the `WordConditionedUNet` call signature
`model(sample (B, 3, H, W) in [-1, 1], timestep (B,) long, cond (B, D) float) -> eps (B, 3, H, W)`
(or an object with a `.sample` attribute holding it); the zero row is the null condition. The update steps are the
diffusers schedulers' own (`DDPMScheduler.step`, `DDIMScheduler.step`); this module only builds the guided ε.

Every image gets its own `torch.Generator` seeded from its own seed, for the initial noise and for every
ancestral noise draw, so image i is the same whatever the batch size or the number of images requested.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from biasdiff.devices import autocast
from biasdiff.errors import ConfigError
from biasdiff.model.pixels import to_uint8

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sampler:
    """One entry of the sampler registry: the diffusers scheduler class that runs it, whether it walks all T
    training steps by default (ancestral DDPM) or `steps` steps, and the extra keyword arguments its `step()` takes
    from the sample settings."""

    scheduler: type
    all_steps_by_default: bool
    step_kwargs: Callable[[float], dict]


# name -> Sampler. A new sampler is one entry here (any diffusers scheduler with `step(eps, t, x, ...)`) plus its
# name in the sample.sampler enum of src/biasdiff/schemas/sample.schema.yaml.
SAMPLERS: dict[str, Sampler] = {
    "ddpm": Sampler(DDPMScheduler, all_steps_by_default=True, step_kwargs=lambda eta: {}),
    "ddim": Sampler(DDIMScheduler, all_steps_by_default=False, step_kwargs=lambda eta: {"eta": eta}),
}


def get_sampler(name: str) -> Sampler:
    """The registry entry of `name`; ConfigError naming the valid samplers otherwise."""
    if name not in SAMPLERS:
        raise ConfigError(f"config key sample.sampler: {name!r} is not one of {list(SAMPLERS)}")
    return SAMPLERS[name]


def _eps(output) -> torch.Tensor:
    """The ε tensor of a model output (plain tensor, diffusers output object with `.sample`, or tuple)."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "sample"):
        return output.sample
    if isinstance(output, (tuple, list)):
        return output[0]
    raise TypeError(f"model returned {type(output).__name__}; expected a tensor or an object with .sample")


def guided_eps(model, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, guidance_scale: float,
               amp: torch.dtype | None = None) -> torch.Tensor:
    """Classifier-free-guided ε̂ = ε̂_u + w (ε̂_c − ε̂_u), with cond and uncond evaluated in ONE forward batch.

    x: (B, C, H, W); t: (B,) long; cond: (B, D) (the null condition is the zero row). Returns (B, C, H, W) in x's
    dtype. `amp`: autocast dtype of the model's forward pass (None = as the weights); the guidance sum is not cast.
    At w = 1 the sum is ε̂_c and at w = 0 it is ε̂_u: one forward pass of B rows instead of 2B (as diffusers skips
    guidance at w <= 1), which halves the cost of the experiment's w = 1 points and of the readout's plain ε̂_c.
    """
    if guidance_scale in (0.0, 1.0):
        c = cond if guidance_scale == 1.0 else torch.zeros_like(cond)
        with autocast(x.device, amp):
            return _eps(model(x, t, c)).to(x.dtype)
    batch = x.shape[0]
    x_in = torch.cat([x, x], dim=0)
    t_in = torch.cat([t, t], dim=0)
    cond_in = torch.cat([cond, torch.zeros_like(cond)], dim=0)
    with autocast(x.device, amp):
        eps = _eps(model(x_in, t_in, cond_in))
    eps = eps.to(x.dtype)
    eps_c, eps_u = eps[:batch], eps[batch:]
    return eps_u + guidance_scale * (eps_c - eps_u)


def make_scheduler(base, sampler: str):
    """The scheduler that runs `sampler` ("ddpm" ancestral or "ddim"), built from the trained model's scheduler config.

    `base` is a diffusers scheduler (or its config dict); the noise schedule (β range, T, prediction type, clipping)
    carries over unchanged.
    """
    config = base.config if hasattr(base, "config") else base
    return get_sampler(sampler).scheduler.from_config(config)


@torch.inference_mode()
def sample_images(
    model,
    scheduler,
    cond: np.ndarray | torch.Tensor,
    seeds: Sequence[int],
    *,
    image_size: int,
    sampler: str = "ddpm",
    steps: int | None = None,
    guidance_scale: float = 3.0,
    eta: float = 0.0,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    channels: int = 3,
    amp: torch.dtype | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Draw one image per seed for one condition vector.

    cond: (D,) word vector (all zeros = the null condition). seeds: one int per image.
    sampler: "ddpm" = ancestral DDPM over all T training steps (`steps` ignored unless given); "ddim" = DDIM with
    `steps` steps (eta 0 = deterministic given x_T). `amp`: the autocast dtype the model's forward passes run in (None:
    the weights' `dtype`); the scheduler's updates stay in `dtype`. Returns uint8 (N, image_size, image_size, channels).
    """
    entry = get_sampler(sampler)
    device = torch.device(device)
    sched = make_scheduler(scheduler, sampler)
    n_train = sched.config.num_train_timesteps
    n_steps = n_train if (entry.all_steps_by_default and steps is None) else int(steps or 50)
    if not 1 <= n_steps <= n_train:
        raise ConfigError(f"config key sample.steps: {n_steps} must be between 1 and {n_train} (the model's T)")
    sched.set_timesteps(n_steps, device=device)
    cond = torch.as_tensor(np.asarray(cond, dtype=np.float32)).reshape(1, -1).to(device=device, dtype=dtype)
    param = next(model.parameters(), None)
    if param is not None and (param.device != device or param.dtype != dtype):
        model = model.to(device=device, dtype=dtype)
    model = model.eval()

    out = np.empty((len(seeds), image_size, image_size, channels), dtype=np.uint8)
    n_batches = -(-len(seeds) // batch_size)
    bar = tqdm(total=n_batches * len(sched.timesteps), desc=f"{sampler}-{n_steps}", disable=not progress, leave=False)
    for start in range(0, len(seeds), batch_size):
        batch_seeds = seeds[start : start + batch_size]
        gens = [torch.Generator(device="cpu").manual_seed(int(s)) for s in batch_seeds]
        b = len(batch_seeds)
        shape = (b, channels, image_size, image_size)
        x = randn_tensor(shape, generator=gens, device=device, dtype=dtype) * sched.init_noise_sigma
        c = cond.expand(b, -1)
        for t in sched.timesteps:
            t_batch = torch.full((b,), int(t), device=device, dtype=torch.long)
            eps = guided_eps(model, sched.scale_model_input(x, t), t_batch, c, guidance_scale, amp=amp)
            x = sched.step(eps, t, x, generator=gens, **entry.step_kwargs(eta)).prev_sample
            bar.update(1)
        out[start : start + b] = to_uint8(x)
    bar.close()
    return out
