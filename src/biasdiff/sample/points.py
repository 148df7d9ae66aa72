"""One sampling point of one model of the experiment (rule experiment_sample): every word at one guidance scale, from the final weights or
from an EMA snapshot kept at an intermediate training step. The images and per-image metadata are the sample
stage's (`biasdiff.sample.stage.draw_word`), so a point is drawn exactly as the sample stage would draw it."""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Sequence

import torch

from biasdiff.artifacts.conditioning import condition_vector, load_conditioning
from biasdiff.devices import resolve_device, resolve_dtype
from biasdiff.grid import save_grid
from biasdiff.io import all_or_nothing, save_npy, write_parquet
from biasdiff.sample.stage import draw_word

log = logging.getLogger(__name__)


def run_point(
    *,
    model_dir: str | os.PathLike,
    conditioning: str | os.PathLike,
    words: Sequence[str],
    outputs: Mapping[str, Sequence[str | os.PathLike]],
    settings: Mapping[str, Any],
    snapshot: int | None = None,
) -> None:
    """Rule experiment_sample: `settings` is the sample section with this point's guidance_scale and n; `snapshot`
    the intermediate step to load (None = the final EMA weights); `outputs` lists images / meta / grid paths in
    `words` order. Nothing is kept unless every word was drawn."""
    from biasdiff.model.unet import load_model_dir

    conditioning = load_conditioning(conditioning)
    for word in words:
        condition_vector(conditioning, word)  # fail on a bad word before loading the model
    device = resolve_device(settings["device"])
    dtype = resolve_dtype(settings.get("dtype", "auto"), device)
    torch.manual_seed(settings["seed"])
    model, scheduler = load_model_dir(model_dir, ema=True, device=device, dtype=dtype, snapshot=snapshot)
    image_size = int(model.config.sample_size)
    name = f"{os.fspath(model_dir)}@{snapshot}" if snapshot else os.fspath(model_dir)
    paths = [p for key in ("images", "meta", "grid") for p in outputs[key]]
    with all_or_nothing(paths):
        for i, word in enumerate(words):
            images, meta = draw_word(model, scheduler, conditioning, word, settings, image_size, model_name=name,
                                     progress=False)
            meta["train_step"] = int(snapshot) if snapshot else -1
            save_npy(images, outputs["images"][i])
            write_parquet(meta, outputs["meta"][i])
            save_grid(images, outputs["grid"][i], n=settings["grid_n"])
            log.info("point guidance %g step %s: wrote %d images of %r", settings["guidance_scale"],
                     snapshot or "final", len(images), word)
