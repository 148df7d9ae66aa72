"""Synthesis through any diffusers text-to-image pipeline (hub id or local directory).

One `torch.Generator` per image, seeded from (seed, prompt, global index), so no two images share a seed and any single image can be
regenerated alone. Generators live on the CPU, which makes the initial latents identical on every device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from biasdiff.devices import resolve_device, resolve_dtype
from biasdiff.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiffusersSettings:
    model: str
    revision: str | None = None
    scheduler: str | None = None
    steps: int = 20
    guidance_scale: float = 7.5
    negative_prompt: str | None = None
    height: int | None = None
    width: int | None = None
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "auto"
    local_files_only: bool = False


def load_pipeline(settings: DiffusersSettings):
    """Load the pipeline, swap in the configured scheduler, move it to the resolved device and dtype."""
    import diffusers

    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    try:
        pipe = diffusers.DiffusionPipeline.from_pretrained(
            settings.model,
            revision=settings.revision,
            dtype=dtype,
            local_files_only=settings.local_files_only,
        )
    except (OSError, ValueError, EnvironmentError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"cannot load diffusers pipeline {settings.model!r} ({first}); set synthesis.diffusers.model to a local pipeline "
            "directory, or pre-download it into the Hugging Face cache and set local_files_only: true"
        ) from exc
    if settings.scheduler:
        cls = getattr(diffusers, settings.scheduler, None)
        if cls is None or not hasattr(cls, "from_config"):
            raise ConfigError(
                f"config key synthesis.diffusers.scheduler: {settings.scheduler!r} is not a diffusers scheduler class "
                "(e.g. DPMSolverSDEScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler)"
            )
        pipe.scheduler = cls.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def image_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per image."""
    return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]


def generate(pipe, prompt: str, seeds: Sequence[int], settings: DiffusersSettings, size: int) -> Iterator[np.ndarray]:
    """Yield uint8 (size, size, 3) images for `prompt`, one per seed, in batches of `settings.batch_size`.

    Images are generated at the configured (or the model's default) resolution and resized with a Lanczos filter to `size`.
    """
    for start in range(0, len(seeds), settings.batch_size):
        batch = list(seeds[start : start + settings.batch_size])
        if hasattr(pipe.scheduler, "noise_sampler_seed"):
            # SDE schedulers (DPMSolverSDE) draw their Brownian noise from their own seed, not from the generators, and pick a
            # random one when it is unset: give each image its own tree, seeded like its generator.
            pipe.scheduler.noise_sampler_seed = [int(s) for s in batch]
            pipe.scheduler.noise_sampler = None
        out = pipe(
            prompt=[prompt] * len(batch),
            negative_prompt=[settings.negative_prompt] * len(batch) if settings.negative_prompt else None,
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance_scale,
            height=settings.height,
            width=settings.width,
            generator=image_generators(batch),
            output_type="pil",
        )
        for image in out.images:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.LANCZOS)
            yield np.asarray(image)
