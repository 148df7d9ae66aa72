"""Score models: one interface over the own word-conditioned DDPM and any diffusers text-to-image pipeline.

Every audit in this subpackage (ScoreDecomp, the ELBO classifier, score similarity, the Lipschitz diagnostic) talks to
a model only through the `ScoreModel` protocol:

- `conditions`: tuple of condition names (words for the own DDPM, prompts for diffusers pipelines); the null
  condition is always available as `NULL` ("" ; zero vector for the DDPM, the empty prompt for diffusers);
- `condition_id(name) -> int` and `condition_vector(name) -> np.ndarray` (what the network is conditioned on);
- `encode(images uint8 (N, H, W, 3)) -> x0 (N, C, h, w)` float32 on the model's device (pixels in [-1, 1], or VAE
  latents × scaling factor);
- `add_noise(x0, noise, t) -> x_t` and `target(x0, noise, t)` (ε, v or x0 according to the scheduler's
  `prediction_type`) from the model's own noise schedule (a DDPMScheduler built from the model's scheduler config);
- `predict(x_t (B, ...), t (B,), condition_ids (B,)) -> raw network output (B, ...)`, batched internally;
- `to_eps(output, x_t, t) -> ε̂` (the score up to the factor −σ_t), whatever the prediction type;
- `predict_conditions(x_t (B, ...), t (B,), ids (K,), space) -> (K, B, ...)`: every condition on the same inputs;
- `evals`: number of network evaluations so far, one per (input row, condition) — exactly what `predict` ran.

Both implementations share `_ScheduledScore`; a new backend only needs `conditions`, `condition_vector`, `encode`
and `_forward(x_t, t, condition_ids)`.

Timesteps are training timesteps, integers in [0, num_train_timesteps).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from diffusers import DDPMScheduler

from biasdiff.devices import autocast
from biasdiff.errors import ConfigError, DataError
from biasdiff.model.pixels import to_unit

log = logging.getLogger(__name__)

NULL = ""
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@runtime_checkable
class ScoreModel(Protocol):
    """What ScoreDecomp, the ELBO classifier and the diagnostics need from a conditional diffusion model."""

    conditions: tuple[str, ...]
    num_train_timesteps: int
    prediction_type: str
    evals: int
    device: torch.device

    def condition_id(self, name: str) -> int: ...

    def condition_vector(self, name: str) -> np.ndarray: ...

    def encode(self, images: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, condition_ids: torch.Tensor) -> torch.Tensor: ...

    def to_eps(self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...

    def predict_conditions(self, x_t: torch.Tensor, t: torch.Tensor, condition_ids, space: str = "raw"
                           ) -> torch.Tensor: ...


def _images_to_unit(images: np.ndarray | torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]. A float tensor (N, 3, H, W) in [-1, 1] passes through."""
    if isinstance(images, torch.Tensor) and images.is_floating_point():
        if images.ndim != 4:
            raise DataError(f"images tensor has shape {tuple(images.shape)}; expected (N, C, H, W) in [-1, 1]")
        return images.to(device=device, dtype=dtype)
    return to_unit(np.asarray(images)).to(device=device, dtype=dtype)


class _ScheduledScore:
    """Shared machinery: noise schedule (a DDPMScheduler), targets, ε conversion, batching and the eval counter."""

    def __init__(self, scheduler_config: Mapping, conditions: Sequence[str], device: torch.device,
                 dtype: torch.dtype, batch_size: int):
        self.scheduler = DDPMScheduler.from_config(dict(scheduler_config))
        self.prediction_type = str(self.scheduler.config.prediction_type)
        if self.prediction_type not in PREDICTION_TYPES:
            raise ConfigError(f"scheduler prediction_type {self.prediction_type!r} is not one of {list(PREDICTION_TYPES)}")
        self.num_train_timesteps = int(self.scheduler.config.num_train_timesteps)
        names = [NULL, *[c for c in conditions if c != NULL]]
        if len(set(names)) != len(names):
            raise ConfigError(f"conditions {list(conditions)} contain duplicates; give each condition once")
        self.conditions = tuple(names)
        self._index = {name: i for i, name in enumerate(self.conditions)}
        self.device = device
        self.dtype = dtype
        self.amp: torch.dtype | None = None  # autocast dtype of the forward passes (None: the weights' dtype)
        if batch_size < 1:
            raise ConfigError(f"batch size {batch_size} must be at least 1")
        self.batch_size = int(batch_size)
        self.evals = 0
        alphas = self.scheduler.alphas_cumprod.to(torch.float64)
        self._sqrt_a = alphas.sqrt()
        self._sqrt_1ma = (1.0 - alphas).sqrt()

    # ---- conditions -------------------------------------------------------------------------------------------
    def condition_id(self, name: str) -> int:
        """Index of a condition name (NULL = "" is always 0)."""
        if name not in self._index:
            shown = [c for c in self.conditions if c != NULL]
            raise ConfigError(f"condition {name!r} is not known to this score model; valid: {shown} or '' (null)")
        return self._index[name]

    def condition_ids(self, names: Sequence[str]) -> list[int]:
        return [self.condition_id(n) for n in names]

    # ---- schedule ---------------------------------------------------------------------------------------------
    def _check_t(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.long)
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_train_timesteps):
            raise ConfigError(f"timesteps {t.tolist()} outside [0, {self.num_train_timesteps - 1}]")
        return t

    def _coef(self, table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        c = table[self._check_t(t).cpu()].to(device=like.device, dtype=torch.float32)
        return c.view(-1, *([1] * (like.ndim - 1)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(ᾱ_t) x0 + sqrt(1 − ᾱ_t) ε. Shapes (B, ...), (B, ...), (B,)."""
        return self.scheduler.add_noise(x0, noise, self._check_t(t).to(x0.device))

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the network was trained to output: ε (epsilon), v = α ε − σ x0 (v_prediction) or x0 (sample)."""
        if self.prediction_type == "epsilon":
            return noise
        if self.prediction_type == "v_prediction":
            return self.scheduler.get_velocity(x0, noise, self._check_t(t).to(x0.device))
        return x0

    def to_eps(self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ε̂ from a raw output: identity for ε; ε̂ = σ x_t + α v̂ for v; ε̂ = (x_t − α x̂0)/σ for x0."""
        if self.prediction_type == "epsilon":
            return output
        a = self._coef(self._sqrt_a, t, x_t)
        s = self._coef(self._sqrt_1ma, t, x_t)
        out = output.float()
        if self.prediction_type == "v_prediction":
            return s * x_t.float() + a * out
        return (x_t.float() - a * out) / s

    # ---- evaluation -------------------------------------------------------------------------------------------
    def _forward(self, x_t: torch.Tensor, t: torch.Tensor, condition_ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, x_t: torch.Tensor, t: torch.Tensor, condition_ids: torch.Tensor) -> torch.Tensor:
        """Raw network output for row i at timestep t[i] under condition condition_ids[i]; (B, ...) float32.

        Runs in chunks of `batch_size` rows and adds B to `evals`.
        """
        t = self._check_t(t)
        ids = torch.as_tensor(condition_ids, dtype=torch.long)
        if not (x_t.shape[0] == t.shape[0] == ids.shape[0]):
            raise ValueError(f"predict: batch sizes differ: x_t {x_t.shape[0]}, t {t.shape[0]}, ids {ids.shape[0]}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= len(self.conditions)):
            raise ConfigError(f"condition ids {sorted(set(ids.tolist()))} outside [0, {len(self.conditions) - 1}]")
        outs = []
        for start in range(0, x_t.shape[0], self.batch_size):
            sl = slice(start, start + self.batch_size)
            with autocast(self.device, self.amp):
                out = self._forward(x_t[sl].to(self.device, self.dtype), t[sl].to(self.device), ids[sl])
            outs.append(out.float())
            self.evals += int(x_t[sl].shape[0])
        return torch.cat(outs, dim=0) if outs else x_t.new_zeros((0, *x_t.shape[1:]))

    def predict_conditions(self, x_t: torch.Tensor, t: torch.Tensor, condition_ids: Sequence[int],
                           space: str = "raw") -> torch.Tensor:
        """Outputs of every condition on the same inputs: (K, B, ...) for K condition ids and B rows of x_t.

        `space="eps"` converts each output to ε̂ (the score up to −σ_t); "raw" keeps the network's own output.
        Costs K·B evaluations.
        """
        if space not in ("raw", "eps"):
            raise ConfigError(f"output space {space!r} is not one of ['eps', 'raw']")
        k, b = len(condition_ids), x_t.shape[0]
        x_rep = x_t.unsqueeze(0).expand(k, *x_t.shape).reshape(k * b, *x_t.shape[1:])
        t_rep = torch.as_tensor(t, dtype=torch.long).repeat(k)
        ids = torch.as_tensor(list(condition_ids), dtype=torch.long).repeat_interleave(b)
        out = self.predict(x_rep, t_rep, ids)
        if space == "eps":
            out = self.to_eps(out, x_rep.to(out.device), t_rep)
        return out.reshape(k, b, *out.shape[1:])


class WordDDPMScore(_ScheduledScore):
    """The own word-conditioned DDPM in pixel space: conditions are words, the null condition is the zero vector.

    `model(sample (B, 3, H, W) in [-1, 1], timestep (B,), cond (B, D)) -> ε̂` (a tensor or an object with `.sample`).
    `conditioning` maps each word to its (D,) vector (biasdiff.artifacts.conditioning.load_conditioning).
    """

    def __init__(self, model: torch.nn.Module, scheduler_config: Mapping, conditioning: Mapping[str, np.ndarray],
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, batch_size: int = 64,
                 amp: torch.dtype | None = None):
        words = [w for w in conditioning if w != NULL]
        if not words:
            raise DataError("conditioning holds no words; expected a mapping word -> vector")
        dims = {np.asarray(v).shape for v in conditioning.values()}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise DataError(f"conditioning vectors have shapes {sorted(dims)}; expected one common (D,) shape")
        super().__init__(scheduler_config, words, torch.device(device), dtype, batch_size)
        dim = next(iter(dims))[0]
        table = np.zeros((len(self.conditions), dim), dtype=np.float32)
        for word in words:
            table[self.condition_id(word)] = np.asarray(conditioning[word], dtype=np.float32)
        self._table = table
        self._cond = torch.from_numpy(table).to(self.device, dtype)
        self.model = model.to(self.device, dtype).eval()
        self.amp = amp

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, conditioning: Mapping[str, np.ndarray], device="auto",
                       dtype: str | torch.dtype = "auto", batch_size: int = 64, ema: bool = True,
                       precision: str = "fp32", key: str = "scoredecomp.precision") -> "WordDDPMScore":
        """Load `results/models/{model}/` through biasdiff.model.unet.load_model_dir (EMA weights by default).

        device/dtype: "auto" (CUDA if available else CPU; float32) or an explicit torch device / dtype name.
        precision: autocast of the forward passes for fp32 weights (auto / bf16 / fp32, `biasdiff.devices`; `key`
        names the config key in errors).
        """
        from biasdiff.devices import forward_precision, precision_label, resolve_device, resolve_dtype
        from biasdiff.model.unet import load_model_dir

        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise DataError(f"model directory {model_dir} does not exist; train the model first (results/models/<name>/)")
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        dt = dtype if isinstance(dtype, torch.dtype) else resolve_dtype(dtype, dev)
        amp = forward_precision(precision, dev, dt, key)
        model, scheduler = load_model_dir(model_dir, ema=ema, device=dev, dtype=dt)
        log.info("score model %s: device %s, forward passes in %s (%s: %s)", model_dir, dev, precision_label(amp or dt),
                 key, precision)
        return cls(model, scheduler.config, conditioning, device=dev, dtype=dt, batch_size=batch_size, amp=amp)

    def condition_vector(self, name: str) -> np.ndarray:
        """The (D,) conditioning vector of a word (zeros for the null condition)."""
        return self._table[self.condition_id(name)].copy()

    def encode(self, images, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> x0 (N, 3, H, W) float32 in [-1, 1] on the model's device."""
        return _images_to_unit(images, self.device, torch.float32)

    def _forward(self, x_t, t, condition_ids):
        out = self.model(x_t, t, self._cond[condition_ids.to(self.device)])
        return out.sample if hasattr(out, "sample") else out


class DiffusersScore(_ScheduledScore):
    """Any diffusers text-to-image pipeline (UNet2DConditionModel + VAE + text encoder) as a score model.

    Conditions are prompts; their text-encoder hidden states are computed once at construction (not counted as
    evaluations). Images are encoded to latents = VAE(images).latent_dist.{mean|sample} × vae scaling factor.
    The noise schedule is a DDPMScheduler built from the pipeline's scheduler config (same betas and
    `prediction_type`), so ε- and v-prediction models are both handled.
    """

    def __init__(self, pipeline, prompts: Sequence[str], device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, batch_size: int = 8, latent: str = "mean"):
        if latent not in ("mean", "sample"):
            raise ConfigError(f"latent {latent!r} is not one of ['mean', 'sample']")
        for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
            if getattr(pipeline, part, None) is None:
                raise DataError(f"diffusers pipeline has no {part}; expected a text-to-image pipeline such as "
                                "StableDiffusionPipeline")
        super().__init__(pipeline.scheduler.config, prompts, torch.device(device), dtype, batch_size)
        self.latent = latent
        self.unet = pipeline.unet.to(self.device, dtype).eval()
        self.vae = pipeline.vae.to(self.device, dtype).eval()
        self.scaling_factor = float(self.vae.config.scaling_factor)
        self._embeds = self._encode_prompts(pipeline.tokenizer, pipeline.text_encoder.to(self.device, dtype))

    @classmethod
    def from_pretrained(cls, id_or_path: str, prompts: Sequence[str], device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32, batch_size: int = 8, latent: str = "mean",
                        local_files_only: bool = False) -> "DiffusersScore":
        """Load a pipeline by hub id or local directory (DiffusionPipeline.from_pretrained), then wrap it."""
        from diffusers import DiffusionPipeline

        try:
            pipe = DiffusionPipeline.from_pretrained(id_or_path, torch_dtype=dtype, safety_checker=None,
                                                     local_files_only=local_files_only)
        except (OSError, ValueError, EnvironmentError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"cannot load diffusers pipeline {id_or_path!r} ({first}); give a local pipeline "
                            "directory (save_pretrained layout) or a reachable hub id") from exc
        return cls(pipe, prompts, device=device, dtype=dtype, batch_size=batch_size, latent=latent)

    @torch.no_grad()
    def _encode_prompts(self, tokenizer, text_encoder) -> torch.Tensor:
        tokens = tokenizer(list(self.conditions), padding="max_length", max_length=tokenizer.model_max_length,
                           truncation=True, return_tensors="pt")
        return text_encoder(tokens.input_ids.to(self.device))[0].to(self.dtype)

    def condition_vector(self, name: str) -> np.ndarray:
        """The flattened text-encoder hidden states the UNet is conditioned on for this prompt."""
        return self._embeds[self.condition_id(name)].float().flatten().cpu().numpy()

    @torch.no_grad()
    def encode(self, images, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> latents (N, C, H/f, W/f) float32; `latent="sample"` draws from `generator`."""
        x = _images_to_unit(images, self.device, self.dtype)
        outs = []
        for start in range(0, x.shape[0], self.batch_size):
            dist = self.vae.encode(x[start:start + self.batch_size]).latent_dist
            z = dist.mean if self.latent == "mean" else dist.sample(generator=generator)
            outs.append(z.float() * self.scaling_factor)
        return torch.cat(outs, dim=0)

    def _forward(self, x_t, t, condition_ids):
        return self.unet(x_t, t, encoder_hidden_states=self._embeds[condition_ids.to(self.device)]).sample
