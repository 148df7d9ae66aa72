"""Image grids for humans (the one tiler): sample grids, training sample grids (one row per word) and the
manifest's contact sheets."""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, ImageDraw

from biasdiff.io import atomic_path

TITLE_BAR = 18  # px above the tiles when a grid has a title


def image_grid(images, n: int | None = None, cols: int | None = None, min_cell: int = 64, pad: int = 2,
               title: str | None = None) -> Image.Image:
    """Tile the first `n` images (uint8 (N, H, W, 3) array, or a list of PIL images of one size) row by row into
    `cols` columns (default: a near-square grid), `pad` px of white between and around the tiles, and an optional
    title bar on top. Cells smaller than `min_cell` px are enlarged with nearest-neighbour (16-px images stay legible).
    """
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"image_grid expects uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        images = [Image.fromarray(img) for img in images[:n]]
    else:
        images = [img.convert("RGB") for img in list(images)[:n]]
    if not images:
        raise ValueError(f"image_grid needs at least one image{f' for {title!r}' if title else ''}")
    w, h = images[0].size
    scale = max(1, math.ceil(min_cell / max(h, w)))
    cw, ch = w * scale, h * scale
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    top = TITLE_BAR if title else 0
    canvas = Image.new("RGB", (cols * (cw + pad) + pad, top + rows * (ch + pad) + pad), "white")
    if title:
        ImageDraw.Draw(canvas).text((4, 3), title, fill=(0, 0, 0))
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        canvas.paste(img.resize((cw, ch), Image.Resampling.NEAREST), (pad + c * (cw + pad), top + pad + r * (ch + pad)))
    return canvas


def save_grid(images, path: str | os.PathLike, n: int | None = None, **kwargs) -> None:
    """Write `image_grid(images, n, **kwargs)` as a PNG, atomically."""
    with atomic_path(path) as tmp:
        image_grid(images, n, **kwargs).save(tmp, format="PNG")
