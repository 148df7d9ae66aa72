"""Word-vector gender projection of each profession, with the embed stage's gender direction.

Reuses biasdiff.embed: `gender_direction` (Bolukbasi PC of the definitional pairs), `gender_projection`
(cos(v, g), > 0 = nearer "woman"), `resolve_word` (exact, lower-case, then capitalised lookup).

A multi-word profession ("computer support specialist") is the mean of its words' unit vectors. Out-of-vocabulary
words are left out of that mean and listed in `oov_words`; a profession none of whose words is in the vocabulary
gets a NaN projection (and is then dropped from every regression, which reports how many were dropped).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from biasdiff.vectors.bias import gender_direction, gender_projection
from biasdiff.vectors.projection import l2_normalize
from biasdiff.vectors.sources import lookup, resolve_word
from biasdiff.vectors.wordlists import DEFINITIONAL_PAIRS


def profession_words(profession: str) -> list[str]:
    """Words of a profession name, split on spaces, hyphens, slashes and underscores ("IT specialist" -> [IT, specialist])."""
    return [w for w in re.split(r"[\s\-/_]+", profession.strip()) if w]


def definitional_direction(kv, source: str) -> np.ndarray:
    """Unit gender direction (d,) of `kv` from the embed stage's definitional pairs (female minus male side up)."""
    female = lookup(kv, [f for f, _ in DEFINITIONAL_PAIRS], source, "definitional pair words")
    male = lookup(kv, [m for _, m in DEFINITIONAL_PAIRS], source, "definitional pair words")
    return gender_direction(female, male)[0]


def profession_projections(kv, professions: Sequence[str], direction: np.ndarray) -> pd.DataFrame:
    """One row per profession: profession, n_words, n_in_vocab, oov_words (list of str), word_projection (float)."""
    rows = []
    for prof in professions:
        words = profession_words(prof)
        keys = [resolve_word(kv, w) for w in words]
        found = [k for k in keys if k is not None]
        oov = [w for w, k in zip(words, keys) if k is None]
        if found:
            mean = l2_normalize(np.stack([kv.get_vector(k).astype(np.float64) for k in found])).mean(axis=0)
            proj = float(gender_projection(mean[None, :], direction)[0])
        else:
            proj = float("nan")
        rows.append(
            {"profession": prof, "n_words": len(words), "n_in_vocab": len(found), "oov_words": oov, "word_projection": proj}
        )
    return pd.DataFrame(rows)
