"""Training data: manifest rows + packed uint8 images + the word conditioning table, as tensors.

Images in the packed array are uint8 (N, H, W, 3); the model sees float (B, 3, H, W) in [-1, 1]
(`biasdiff.model.pixels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import torch

from biasdiff.artifacts.manifest import require_columns
from biasdiff.errors import DataError

# The manifest columns training reads.
TRAIN_COLUMNS = ("array_index", "prompt", "words", "split")


def conditioning_matrix(table: Mapping[str, np.ndarray], words: Iterable[str]) -> tuple[list[str], torch.Tensor]:
    """(vocab, (V, D) float32) for the configured words; DataError naming any word the table lacks."""
    vocab = sorted(set(words))
    missing = [w for w in vocab if w not in table]
    if missing:
        raise DataError(
            f"conditioning word(s) {missing} are configured but missing from the conditioning table; "
            f"it has {sorted(table)}"
        )
    dims = {np.asarray(table[w]).shape for w in vocab}
    if len(dims) != 1 or len(next(iter(dims))) != 1:
        raise DataError(f"conditioning vectors must all be 1-d of one length; got shapes {sorted(dims)}")
    matrix = np.stack([np.asarray(table[w], dtype=np.float32) for w in vocab])
    if not np.isfinite(matrix).all():
        raise DataError("conditioning table holds non-finite values")
    return vocab, torch.from_numpy(matrix)


@dataclass
class SplitData:
    """One split: `images` uint8 (N, H, W, 3) tensor, `words` per row, `array_index` (N,), `prompts` (N,)."""

    images: torch.Tensor
    words: list[tuple[str, ...]]
    array_index: np.ndarray
    prompts: list[str]


def select_split(manifest: pd.DataFrame, images: np.ndarray, split: str,
                 prompt_words: Mapping[str, list[str]] | None = None) -> SplitData:
    """Rows of `split`, their images loaded into memory, and their words.

    `prompt_words` (prompt -> configured words) overrides the manifest's `words` column when given, and is checked
    against it: a manifest built for other words is an error, not something to train on silently.
    """
    require_columns(manifest, TRAIN_COLUMNS)
    rows = manifest[manifest["split"] == split].sort_values("array_index")
    idx = rows["array_index"].to_numpy(dtype=np.int64)
    if len(idx) and (idx.max() >= len(images) or idx.min() < 0):
        raise DataError(f"manifest array_index {int(idx.max())} is out of range for an image array of {len(images)} rows")
    words = [tuple(str(w) for w in ws) for ws in rows["words"]]
    if prompt_words is not None:
        for prompt, ws in zip(rows["prompt"], words):
            if prompt not in prompt_words:
                raise DataError(f"manifest prompt {prompt!r} is not configured; configured: {sorted(prompt_words)}")
            if tuple(prompt_words[prompt]) != ws:
                raise DataError(
                    f"manifest words {list(ws)} of prompt {prompt!r} differ from the configured {prompt_words[prompt]}; "
                    "rebuild the manifest"
                )
    arr = np.ascontiguousarray(images[idx]) if len(idx) else np.zeros((0, *images.shape[1:]), np.uint8)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise DataError(f"image array must be uint8 (N, H, W, 3); got {arr.dtype} {arr.shape}")
    return SplitData(torch.from_numpy(arr), words, idx, [str(p) for p in rows["prompt"]])
