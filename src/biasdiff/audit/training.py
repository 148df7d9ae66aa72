"""What the DDPM was shown: P(attribute | word) in the training data, from the manifest and the word schedule.

Every image is trained once per entry of its `words` list (repeats count: an image of prompt `man` with words
[man, person, man] counts twice for man). The null condition (classifier-free-guidance dropout replaces any
(image, word) pair with probability p_uncond) therefore sees every (image, word) pair, so its row is the
distribution over all pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from biasdiff.artifacts.conditioning import NULL_WORD
from biasdiff.artifacts.manifest import require_columns
from biasdiff.errors import DataError

# The manifest columns the audit reads.
AUDIT_COLUMNS = ("array_index", "words", "gender", "occupation", "split")


def word_pairs(manifest: pd.DataFrame, split: str | None = "train") -> pd.DataFrame:
    """One row per (image, word slot) of `split` (None = every split): word, gender, occupation, array_index."""
    require_columns(manifest, AUDIT_COLUMNS)
    rows = manifest if split is None else manifest[manifest["split"] == split]
    if rows.empty:
        raise DataError(f"manifest has no images in split {split!r}; valid splits: {sorted(manifest['split'].unique())}")
    pairs = rows[["array_index", "words", "gender", "occupation"]].explode("words").rename(columns={"words": "word"})
    return pairs.reset_index(drop=True)


def training_attribute_table(manifest: pd.DataFrame, split: str | None = "train") -> pd.DataFrame:
    """Per conditioning word (and `null`): n_pairs, n_images, train_frac_female, train_frac_occupation_<label>.

    n_pairs counts (image, word) training pairs (the weights of train_frac_*); n_images counts distinct images.
    """
    pairs = word_pairs(manifest, split)
    occupations = sorted(pairs["occupation"].unique())
    groups = [(w, g) for w, g in pairs.groupby("word", sort=True)] + [(NULL_WORD, pairs)]
    rows = []
    for word, g in groups:
        row = {
            "word": word,
            "n_pairs": int(len(g)),
            "n_images": int(g["array_index"].nunique()),
            "train_frac_female": float(np.mean(g["gender"] == "female")),
        }
        for occ in occupations:
            row[f"train_frac_occupation_{occ}"] = float(np.mean(g["occupation"] == occ))
        rows.append(row)
    return pd.DataFrame(rows)
