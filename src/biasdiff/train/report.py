"""Human-facing outputs of training: the log CSV, the loss plot, and EMA sample grids (one row per word)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from diffusers.utils import logging as diffusers_logging
from PIL import Image

from biasdiff.grid import image_grid
from biasdiff.io import atomic_path, save_figure
from biasdiff.model.sampling import sample_images
from biasdiff.seeds import derive_seed


def write_log_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """train_log.csv: step, loss, val_loss (empty where not evaluated), lr, images_per_s."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def plot_loss(frame: pd.DataFrame, path: str | Path) -> None:
    """loss.png: train loss (raw and smoothed) and val loss against step (log y), learning rate below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax_lr) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, height_ratios=(3, 1))
    ax.plot(frame["step"], frame["loss"], color="0.75", lw=0.6, label="train (per step)")
    window = max(1, len(frame) // 50)
    ax.plot(frame["step"], frame["loss"].rolling(window, min_periods=1).mean(), color="C0", label=f"train ({window}-step mean)")
    val = frame.dropna(subset=["val_loss"])
    ax.plot(val["step"], val["val_loss"], "o-", color="C3", ms=3, label="val (fixed t, noise)")
    ax.set_yscale("log")
    ax.set_ylabel("MSE (eps)")
    ax.legend(fontsize=8)
    ax_lr.plot(frame["step"], frame["lr"], color="C2")
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("optimizer step")
    save_figure(fig, path)
    plt.close(fig)


def sample_grid(model, scheduler, vocab: Sequence[str], cond_matrix: torch.Tensor, grid_cfg: Mapping[str, Any],
                image_size: int, seed: int, device, amp: torch.dtype | None = None) -> Image.Image:
    """A PIL grid: one row per word in `vocab` plus a last row for the null condition, `grid_cfg["n"]` columns.

    DDIM with `grid_cfg["steps"]` steps, eta `grid_cfg["eta"]` (default 1) and guidance `grid_cfg["guidance_scale"]`; the same seeds in every row, so
    rows differ only by their word.
    """
    n = int(grid_cfg["n"])
    seeds = [derive_seed(seed, "grid", j) for j in range(n)]
    conds = [*cond_matrix.float().cpu().numpy(), np.zeros(cond_matrix.shape[1], np.float32)]
    # sample_images casts the model with .to(dtype); diffusers warns about that even for float32 -> float32
    previous = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        rows = [sample_images(model, scheduler, c, seeds, image_size=image_size, sampler="ddim", steps=grid_cfg["steps"],
                              eta=grid_cfg.get("eta", 1.0), guidance_scale=grid_cfg["guidance_scale"], device=device,
                              amp=amp, progress=False)
                for c in conds]
    finally:
        diffusers_logging.set_verbosity(previous)
    return image_grid(np.concatenate(rows), cols=n)
