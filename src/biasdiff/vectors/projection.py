"""Seeded Gaussian Johnson-Lindenstrauss projection and its pairwise-distance distortion.

As in the seed project (sklearn `GaussianRandomProjection` on unit-normalised word2vec vectors): each word
vector is L2-normalised, then multiplied by a random matrix R of shape (k, d) with i.i.d. entries N(0, 1/k),
so squared lengths are preserved in expectation. The seed is `embedding.seed`; the same (seed, d, k) always
gives the same R.
"""

from __future__ import annotations

import numpy as np


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, shape (n, d) -> (n, d); zero rows stay zero (as the seed did)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def jl_matrix(d: int, k: int, seed: int) -> np.ndarray:
    """Gaussian JL matrix R, shape (k, d), entries N(0, 1/k), drawn from `np.random.default_rng(seed)`."""
    if d < 1 or k < 1:
        raise ValueError(f"JL matrix needs d >= 1 and k >= 1, got d={d}, k={k}")
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0 / np.sqrt(k), size=(k, d))


def project_jl(vectors: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Project rows of `vectors` (n, d) with R (k, d) after L2 normalisation: returns (n, k) = normalize(X) R^T."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    if vectors.shape[1] != matrix.shape[1]:
        raise ValueError(f"vectors have dim {vectors.shape[1]} but the JL matrix expects {matrix.shape[1]}")
    return l2_normalize(vectors) @ matrix.T


def pairwise_distances(vectors: np.ndarray) -> np.ndarray:
    """Euclidean distances of all pairs i < j of rows of `vectors` (n, d): shape (n (n-1) / 2,), row-major order."""
    vectors = np.asarray(vectors, dtype=np.float64)
    sq = np.einsum("ij,ij->i", vectors, vectors)
    gram = vectors @ vectors.T
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
    iu = np.triu_indices(len(vectors), k=1)
    return np.sqrt(d2[iu])


def distortion(before: np.ndarray, after: np.ndarray) -> dict:
    """Pairwise-distance distortion of a map that sent rows of `before` (n, d) to rows of `after` (n, k).

    ratio_ij = ||after_i - after_j|| / ||before_i - before_j|| over pairs with a non-zero distance before.
    Returns {"max": max |ratio - 1|, "mean": mean |ratio - 1|, "min_ratio", "max_ratio", "n_words", "n_pairs"}.
    """
    before, after = np.asarray(before), np.asarray(after)
    if len(before) != len(after):
        raise ValueError(f"distortion needs the same rows before and after, got {len(before)} and {len(after)}")
    d_before, d_after = pairwise_distances(before), pairwise_distances(after)
    keep = d_before > 0
    if not keep.any():
        raise ValueError("distortion needs at least two distinct vectors")
    ratio = d_after[keep] / d_before[keep]
    dev = np.abs(ratio - 1.0)
    return {
        "max": float(dev.max()),
        "mean": float(dev.mean()),
        "min_ratio": float(ratio.min()),
        "max_ratio": float(ratio.max()),
        "n_words": int(len(before)),
        "n_pairs": int(keep.sum()),
    }
