"""Contact sheets: a grid of one prompt's images with a title bar, for a human to check what was drawn."""

from __future__ import annotations

import math
from typing import Sequence

from PIL import Image, ImageDraw

from biasdiff.io import atomic_path


def contact_sheet(images: Sequence[Image.Image], title: str, path: str, min_cell: int = 64) -> None:
    """Write a near-square grid of `images` (upscaled to at least `min_cell` px) under a title bar to `path` (PNG)."""
    if not images:
        raise ValueError(f"no images for the contact sheet {title!r}")
    w, h = images[0].size
    factor = max(1, math.ceil(min_cell / max(w, h)))
    cw, ch = w * factor, h * factor
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    bar = 18
    sheet = Image.new("RGB", (cols * cw, rows * ch + bar), (255, 255, 255))
    ImageDraw.Draw(sheet).text((4, 3), f"{title} ({len(images)} images)", fill=(0, 0, 0))
    for k, image in enumerate(images):
        r, c = divmod(k, cols)
        sheet.paste(image.resize((cw, ch), Image.NEAREST), (c * cw, bar + r * ch))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
