"""Image grids for humans: a few samples of one word side by side."""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

from biasdiff.io import atomic_path


def image_grid(images: np.ndarray, n: int | None = None, min_cell: int = 64, pad: int = 2) -> Image.Image:
    """Tile the first `n` images of a uint8 (N, H, W, 3) array into a near-square grid (white padding).

    Cells smaller than `min_cell` pixels are enlarged with nearest-neighbour (so 16-px samples stay legible).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"image_grid expects uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if n is not None:
        images = images[:n]
    count, h, w, _ = images.shape
    if count == 0:
        raise ValueError("image_grid needs at least one image")
    scale = max(1, math.ceil(min_cell / max(h, w)))
    ch, cw = h * scale, w * scale
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    canvas = Image.new("RGB", (cols * (cw + pad) + pad, rows * (ch + pad) + pad), "white")
    for i, img in enumerate(images):
        tile = Image.fromarray(img).resize((cw, ch), Image.Resampling.NEAREST)
        r, c = divmod(i, cols)
        canvas.paste(tile, (pad + c * (cw + pad), pad + r * (ch + pad)))
    return canvas


def save_grid(images: np.ndarray, path: str | os.PathLike, n: int | None = None) -> None:
    """Write `image_grid(images, n)` as a PNG, atomically."""
    with atomic_path(path) as tmp:
        image_grid(images, n).save(tmp, format="PNG")
