"""Reading the conditioning artifact (`results/embeddings/conditioning.parquet`) in later stages, and the null
condition's name. Light at import (numpy and pandas load on first use): the workflow imports `NULL_WORD` while it
builds the DAG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from biasdiff.errors import DataError

if TYPE_CHECKING:
    import numpy as np

# The null (unconditional) condition: the zero vector, named "null" wherever a word is expected.
NULL_WORD = "null"


class ConditioningVectors(dict):
    """word -> float32 vector (dim,). Looking up an unknown word raises a one-line DataError listing valid words."""

    def __missing__(self, word):
        raise DataError(f"conditioning word {word!r} is not in the embedding artifact; valid: {sorted(self)}")


def load_conditioning(path: str | Path) -> ConditioningVectors:
    """Read conditioning.parquet into {word: np.ndarray float32 of shape (dim,)}."""
    import numpy as np
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"conditioning file {path} does not exist; run the embed_words rule first")
    try:
        table = pd.read_parquet(path, columns=["word", "vector"])
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"conditioning file {path} could not be read ({exc}); expected columns word, vector") from exc
    return ConditioningVectors({w: np.asarray(v, dtype=np.float32) for w, v in zip(table["word"], table["vector"])})


def condition_vector(conditioning: Mapping[str, np.ndarray], word: str) -> np.ndarray:
    """The (D,) float32 vector of `word`; the zero vector for the null condition. Unknown word -> DataError."""
    import numpy as np

    if not conditioning:
        raise DataError("the conditioning table is empty; rerun the embed stage")
    if word == NULL_WORD:
        dim = len(next(iter(conditioning.values())))
        return np.zeros(dim, dtype=np.float32)
    if word not in conditioning:
        raise DataError(
            f"word {word!r} is not in the conditioning table; valid words: {sorted(conditioning) + [NULL_WORD]}"
        )
    return np.asarray(conditioning[word], dtype=np.float32)
