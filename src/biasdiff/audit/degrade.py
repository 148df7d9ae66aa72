"""Ways to make clean labelled images look more like what a short-trained model draws, with their gender known.

- `blur_noise`: a Gaussian blur and additive Gaussian pixel noise, both growing with one level in [0, 1];
- `diffusion_x0`: the forward diffusion to step t, then the trained model's one-step estimate of the clean image
  x̂0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t (what the sampler's first look at the image is; unconditional by default, so the
  embedding does not push the gender);
- `sdedit`: the forward diffusion to t0 = strength·T, then the model's guided sampler from t0 down to 0 (SDEdit,
  Meng et al. 2022), conditioned on a word: sample-like images whose gender is the input's at low strength.

All three are deterministic: image i's noise comes from its own seed, so it does not depend on the batch size.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image, ImageFilter

from biasdiff.model.pixels import to_uint8, to_unit
from biasdiff.model.sampling import get_sampler, guided_eps, make_scheduler


def blur_noise(images: np.ndarray, level: float, seeds: Sequence[int], max_blur: float, max_noise: float) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8: Gaussian blur of radius level·max_blur pixels, then Gaussian noise of std
    level·max_noise (in [-1, 1] units, i.e. ×127.5 grey levels) drawn from each image's seed."""
    if not 0 <= level <= 1:
        raise ValueError(f"blur_noise level {level} must be in [0, 1]")
    out = np.empty_like(images)
    for i, (image, seed) in enumerate(zip(images, seeds)):
        pil = Image.fromarray(np.asarray(image))
        if level * max_blur > 0:
            pil = pil.filter(ImageFilter.GaussianBlur(level * max_blur))
        x = np.asarray(pil, dtype=np.float32)
        if level * max_noise > 0:
            x = x + np.random.default_rng(int(seed)).normal(0.0, level * max_noise * 127.5, size=x.shape)
        out[i] = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return out


def _noise(seeds: Sequence[int], shape: tuple[int, ...], device, dtype) -> tuple[torch.Tensor, list[torch.Generator]]:
    gens = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
    return randn_tensor((len(gens), *shape), generator=gens, device=device, dtype=dtype), gens


@torch.inference_mode()
def diffusion_x0(model, scheduler, images: np.ndarray, t: int, cond: np.ndarray, seeds: Sequence[int], *,
                 batch_size: int = 64, amp: torch.dtype | None = None, device="cpu") -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8: x_t from the forward diffusion (noise from each image's seed), then the model's
    one-step x̂0 given condition vector `cond` (D,) (zeros = the null condition), clipped to [-1, 1]. t = 0 returns
    the images unchanged."""
    if t == 0:
        return np.asarray(images).copy()
    ab = scheduler.alphas_cumprod[int(t)].item()
    out = np.empty_like(images)
    c = torch.as_tensor(np.asarray(cond, dtype=np.float32)).reshape(1, -1).to(device)
    for start in range(0, len(images), batch_size):
        x0 = to_unit(np.asarray(images[start : start + batch_size])).to(device)
        noise, _ = _noise(seeds[start : start + batch_size], tuple(x0.shape[1:]), x0.device, x0.dtype)
        x_t = ab**0.5 * x0 + (1 - ab) ** 0.5 * noise
        tt = torch.full((len(x0),), int(t), dtype=torch.long, device=x0.device)
        eps = guided_eps(model, x_t, tt, c.expand(len(x0), -1), 1.0, amp=amp)  # scale 1 = the plain conditional ε̂
        out[start : start + len(x0)] = to_uint8(((x_t - (1 - ab) ** 0.5 * eps) / ab**0.5).clamp(-1, 1))
    return out


@torch.inference_mode()
def sdedit(model, scheduler, images: np.ndarray, strength: float, cond: np.ndarray, seeds: Sequence[int], *,
           sampler: str = "ddim", steps: int = 20, eta: float = 1.0, guidance_scale: float = 3.0,
           batch_size: int = 64, amp: torch.dtype | None = None, device="cpu") -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8: SDEdit at `strength` in (0, 1]: of the sampler's `steps` timesteps over T, the
    ones at or below strength·T are run, starting from the forward diffusion of each image to the first of them
    (noise and ancestral draws from each image's seed), guided by `cond` as the sample stage guides."""
    if not 0 < strength <= 1:
        raise ValueError(f"SDEdit strength {strength} must be in (0, 1]")
    entry = get_sampler(sampler)
    sched = make_scheduler(scheduler, sampler)
    n_train = sched.config.num_train_timesteps
    sched.set_timesteps(n_train if entry.all_steps_by_default else int(steps), device=device)
    timesteps = [t for t in sched.timesteps if int(t) <= strength * (n_train - 1)]
    if not timesteps:
        return np.asarray(images).copy()
    out = np.empty_like(images)
    c = torch.as_tensor(np.asarray(cond, dtype=np.float32)).reshape(1, -1).to(device)
    for start in range(0, len(images), batch_size):
        x0 = to_unit(np.asarray(images[start : start + batch_size])).to(device)
        noise, gens = _noise(seeds[start : start + batch_size], tuple(x0.shape[1:]), x0.device, x0.dtype)
        x = sched.add_noise(x0, noise, timesteps[0].reshape(1))
        b = len(x0)
        for t in timesteps:
            tt = torch.full((b,), int(t), dtype=torch.long, device=x.device)
            eps = guided_eps(model, sched.scale_model_input(x, t), tt, c.expand(b, -1), guidance_scale, amp=amp)
            x = sched.step(eps, t, x, generator=gens, **entry.step_kwargs(eta)).prev_sample
        out[start : start + b] = to_uint8(x)
    return out
