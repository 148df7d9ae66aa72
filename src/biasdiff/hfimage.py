"""Decoding Hugging Face `datasets` Image-feature cells, as stored in the Parquet files of FairFace and StableBias."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from biasdiff.errors import DataError


def decode_image_cell(cell, where: str) -> Image.Image:
    """An RGB image from a cell `{"bytes": ..., "path": ...}` (or raw bytes); `where` names the cell in errors,
    e.g. "FairFace Parquet image at train-0.parquet row 3"."""
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if data is None and isinstance(cell, dict) and cell.get("path") and Path(cell["path"]).is_file():
        data = Path(cell["path"]).read_bytes()
    if data is None:
        raise DataError(f"{where} has neither bytes nor a readable path")
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise DataError(f"{where} cannot be decoded: {exc}") from exc
