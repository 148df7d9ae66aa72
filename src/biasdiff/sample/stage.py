"""The sample stage: N guided samples of one conditioning word (or the null condition) from one trained model.

Artifacts of one `{word}` (all written atomically):
- `{word}.npy`: uint8 (N, H, W, 3), row i = the image drawn from seed `derive_seed(seed, "sample", word, i)`;
- `{word}.parquet`: one row per image: index, word, seed, sampler, steps, guidance_scale, eta, use_ema, model;
- `grid_{word}.png`: the first `grid_n` images for humans.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from biasdiff.artifacts.conditioning import condition_vector, load_conditioning
from biasdiff.devices import forward_precision, precision_label, resolve_device, resolve_dtype
from biasdiff.errors import DataError
from biasdiff.io import save_npy, write_parquet
from biasdiff.grid import save_grid
from biasdiff.model.sampling import get_sampler, sample_images
from biasdiff.seeds import derive_seed

log = logging.getLogger(__name__)

TRAIN_RULE = "train_ddpm"


def image_seeds(seed: int, word: str, n: int) -> list[int]:
    """One seed per image: derive_seed(seed, "sample", word, i) for i < n (stable when n grows)."""
    return [derive_seed(seed, "sample", word, i) for i in range(n)]


def draw_word(
    model,
    scheduler,
    conditioning: Mapping[str, np.ndarray],
    word: str,
    params: Mapping[str, Any],
    image_size: int,
    model_name: str = "",
    progress: bool = True,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Sample `params["n"]` images of `word`. Returns (uint8 (N, H, W, 3), per-image metadata DataFrame)."""
    vector = condition_vector(conditioning, word)
    device = resolve_device(params["device"])
    dtype = resolve_dtype(params.get("dtype", "auto"), device)
    amp = forward_precision(params.get("precision", "auto"), device, dtype, "sample.precision")
    seeds = image_seeds(params["seed"], word, params["n"])
    sampler = get_sampler(params["sampler"])
    steps = None if sampler.all_steps_by_default else params["steps"]
    eta = float(params.get("eta", 0.0))
    log.info(
        "sampling %d images of %r: %s%s, guidance %.2f, %s weights, device %s, %s",
        len(seeds), word, params["sampler"], f"-{steps}" if steps else "", params["guidance_scale"],
        "EMA" if params["use_ema"] else "raw", device, precision_label(amp or dtype),
    )
    images = sample_images(
        model, scheduler, vector, seeds, image_size=image_size, sampler=params["sampler"], steps=steps,
        guidance_scale=params["guidance_scale"], eta=eta, batch_size=params["batch_size"],
        device=device, dtype=dtype, amp=amp, progress=progress,
    )
    meta = pd.DataFrame(
        {
            "index": np.arange(len(seeds), dtype=np.int64),
            "word": word,
            "seed": np.asarray(seeds, dtype=np.int64),
            "sampler": params["sampler"],
            "steps": np.int64(steps if steps else scheduler.config.num_train_timesteps),
            "guidance_scale": float(params["guidance_scale"]),
            "eta": eta if "eta" in sampler.step_kwargs(eta) else float("nan"),  # samplers that take eta only
            "use_ema": bool(params["use_ema"]),
            "model": model_name,
            "precision": precision_label(amp or dtype),  # what the forward passes ran in
        }
    )
    return images, meta


def check_model_dir(model_dir: str | os.PathLike, use_ema: bool) -> Path:
    """A model directory must hold the weights the sampler asks for; else a DataError naming the rule that makes it."""
    model_dir = Path(model_dir)
    weights = model_dir / ("unet_ema" if use_ema else "unet")
    if not weights.is_dir():
        what = "does not exist" if not model_dir.is_dir() else f"has no {weights.name}/ weights"
        raise DataError(
            f"model directory {model_dir} {what}; it is made by the training rule {TRAIN_RULE} "
            f"(run: snakemake --until {TRAIN_RULE})"
        )
    return model_dir


def run_sample(
    model_dir: str | os.PathLike,
    conditioning: str | os.PathLike,
    word: str,
    outputs: Mapping[str, str | os.PathLike],
    settings: Mapping[str, Any],
) -> None:
    """Stage entry point (rule sample_word): load the model and the conditioning table, draw `word`, write the
    three artifacts `outputs` names: images (.npy), meta (.parquet), grid (.png).

    The image size is the model's own (`model.config.sample_size`).
    """
    from biasdiff.model.unet import load_model_dir

    params = settings
    model_dir = check_model_dir(model_dir, params["use_ema"])
    conditioning = load_conditioning(conditioning)
    condition_vector(conditioning, word)  # fail on a bad word before loading the model
    device = resolve_device(params["device"])
    dtype = resolve_dtype(params.get("dtype", "auto"), device)
    torch.manual_seed(params["seed"])
    model, scheduler = load_model_dir(model_dir, ema=params["use_ema"], device=device, dtype=dtype)
    image_size = int(model.config.sample_size)
    images, meta = draw_word(model, scheduler, conditioning, word, params, image_size, model_name=model_dir.name)
    save_npy(images, outputs["images"])
    write_parquet(meta, outputs["meta"])
    save_grid(images, outputs["grid"], n=params["grid_n"])
    log.info("wrote %d images of %r to %s", len(images), word, outputs["images"])
