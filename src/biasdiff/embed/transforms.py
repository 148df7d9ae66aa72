"""Transforms of gender-neutral word vectors along a gender direction g (unit, shape (d,)), for experiments.

- `hard_debias` (Bolukbasi et al. 2016, "neutralize" step): remove the component along g, then restore the
  vector's original length (their vectors are unit length; ours are JL-projected, so the length is kept).
- `scale_bias` with lambda: v -> v - (1 - lambda) (v . g) g, i.e. the component along g is multiplied by lambda
  (lambda = 1: unchanged; 0: neutralised without renormalising; 2: bias doubled; -1: bias mirrored).
Gendered words (definitional pairs, WEAT attribute sets, configured extras) are never transformed.
"""

from __future__ import annotations

import numpy as np

TRANSFORM_KINDS = ("none", "hard-debias", "bias-scale")


def _unit(direction: np.ndarray) -> np.ndarray:
    return direction / np.linalg.norm(direction)


def hard_debias(vectors: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Rows of `vectors` (n, d) with the component along `direction` removed and their norms restored: (n, d)."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    g = _unit(direction)
    out = vectors - np.outer(vectors @ g, g)
    old, new = np.linalg.norm(vectors, axis=1), np.linalg.norm(out, axis=1)
    scale = np.divide(old, new, out=np.ones_like(old), where=new > 0)
    return out * scale[:, None]


def scale_bias(vectors: np.ndarray, direction: np.ndarray, lam: float) -> np.ndarray:
    """Rows of `vectors` (n, d) with their component along `direction` multiplied by `lam`: (n, d)."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    g = _unit(direction)
    return vectors - (1.0 - lam) * np.outer(vectors @ g, g)


def apply_transform(
    vectors: np.ndarray, neutral: np.ndarray, direction: np.ndarray, kind: str, lam: float = 1.0
) -> np.ndarray:
    """Apply transform `kind` (one of TRANSFORM_KINDS) to the rows of `vectors` (n, d) where `neutral` (n,) is True."""
    if kind not in TRANSFORM_KINDS:
        raise ValueError(f"embedding.transform.kind {kind!r} is unknown; valid: {list(TRANSFORM_KINDS)}")
    out = np.array(vectors, dtype=np.float64, copy=True)
    neutral = np.asarray(neutral, dtype=bool)
    if kind == "none" or not neutral.any():
        return out
    if kind == "hard-debias":
        out[neutral] = hard_debias(out[neutral], direction)
    else:
        out[neutral] = scale_bias(out[neutral], direction, lam)
    return out
