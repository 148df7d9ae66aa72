"""Reading the conditioning artifact (`results/embeddings/conditioning.parquet`) in later stages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biasdiff.errors import DataError


class ConditioningVectors(dict):
    """word -> float32 vector (dim,). Looking up an unknown word raises a one-line DataError listing valid words."""

    def __missing__(self, word):
        raise DataError(f"conditioning word {word!r} is not in the embedding artifact; valid: {sorted(self)}")


def load_conditioning(path: str | Path) -> ConditioningVectors:
    """Read conditioning.parquet into {word: np.ndarray float32 of shape (dim,)}."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"conditioning file {path} does not exist; run the embed_words rule first")
    try:
        table = pd.read_parquet(path, columns=["word", "vector"])
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"conditioning file {path} could not be read ({exc}); expected columns word, vector") from exc
    return ConditioningVectors({w: np.asarray(v, dtype=np.float32) for w, v in zip(table["word"], table["vector"])})
