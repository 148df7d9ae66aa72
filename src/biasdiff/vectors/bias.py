"""Gender-bias diagnostics of a word-vector space: gender direction, per-word projections and cosines, WEAT.

Conventions (shapes in docstrings): word vectors are rows; every score is computed on L2-normalised rows, so a
word's "projection on the gender direction" is cos(word, g) with g a unit vector. On GloVe 6B-50d normalised
vectors this gives nurse +0.306, person +0.061, philosopher -0.256 (the published +0.31 / +0.06 / -0.26).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from biasdiff.vectors.projection import l2_normalize


def gender_direction(female: np.ndarray, male: np.ndarray) -> tuple[np.ndarray, float]:
    """Bolukbasi et al. (2016) gender direction from definitional pairs.

    female, male: (p, d), row i of each is one pair (e.g. woman/man first). Rows are L2-normalised, each pair is
    centred on its own mean (so the 2p centred rows are +-(f_i - m_i)/2), and g is the first principal component
    (top right-singular vector) of those rows. Oriented so that the first pair's female word projects above its
    male word (woman - man has a positive component). Returns (g (d,) unit vector, share of variance it explains).
    """
    female, male = l2_normalize(female), l2_normalize(male)
    if female.shape != male.shape or female.ndim != 2:
        raise ValueError(f"definitional pairs need equal (p, d) arrays, got {female.shape} and {male.shape}")
    centre = (female + male) / 2.0
    centred = np.concatenate([female - centre, male - centre])
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)
    g = vt[0]
    if g @ (female[0] - male[0]) < 0:
        g = -g
    explained = float(sing[0] ** 2 / np.sum(sing**2))
    return g / np.linalg.norm(g), explained


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of rows of a (n, d) with rows of b (m, d): shape (n, m); zero vectors give 0."""
    return l2_normalize(np.atleast_2d(a)) @ l2_normalize(np.atleast_2d(b)).T


def gender_projection(vectors: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """cos(word, g) for rows of `vectors` (n, d) and unit direction g (d,): shape (n,); > 0 = nearer "woman"."""
    return l2_normalize(np.atleast_2d(vectors)) @ (direction / np.linalg.norm(direction))


@dataclass(frozen=True)
class WeatResult:
    """WEAT outcome: effect size d (Caliskan et al. 2017, eq. for d with sample std), one-sided permutation p-value
    P(S(X_i, Y_i) >= S(X, Y)), the test statistic S, the number of partitions used and whether they were all of them."""

    effect_size: float
    p_value: float
    statistic: float
    n_permutations: int
    exact: bool


def association(words: np.ndarray, attr_a: np.ndarray, attr_b: np.ndarray) -> np.ndarray:
    """s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b) for each row w of `words` (n, d): shape (n,)."""
    return cosine(words, attr_a).mean(axis=1) - cosine(words, attr_b).mean(axis=1)


def weat(
    x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray, permutations: int = 10_000, seed: int = 0
) -> WeatResult:
    """Word Embedding Association Test (Caliskan, Bryson, Narayanan 2017) of targets X (nx, d), Y (ny, d) against
    attributes A (na, d), B (nb, d).

    S(X, Y) = sum_x s(x, A, B) - sum_y s(y, A, B); effect size = (mean_X s - mean_Y s) / std_{X u Y} s (ddof=1).
    p-value: share of equal-size re-partitions (X_i, Y_i) of X u Y with S(X_i, Y_i) >= S(X, Y). All partitions
    are enumerated when there are at most `permutations` of them; otherwise `permutations` random ones are drawn
    from `np.random.default_rng(seed)` and p = (1 + #{>=}) / (1 + permutations).
    """
    s_x, s_y = association(x, a, b), association(y, a, b)
    s_all = np.concatenate([s_x, s_y])
    nx, n = len(s_x), len(s_all)
    statistic = float(s_x.sum() - s_y.sum())
    effect = float((s_x.mean() - s_y.mean()) / s_all.std(ddof=1))
    total = s_all.sum()
    n_partitions = math.comb(n, nx)
    tol = 1e-12 * max(1.0, abs(statistic))
    if n_partitions <= permutations:
        sums = np.array([s_all[list(idx)].sum() for idx in itertools.combinations(range(n), nx)])
        stats = 2.0 * sums - total
        p = float(np.mean(stats >= statistic - tol))
        return WeatResult(effect, p, statistic, n_partitions, True)
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((permutations, n)), axis=1)[:, :nx]
    stats = 2.0 * s_all[perms].sum(axis=1) - total
    p = float((1 + np.sum(stats >= statistic - tol)) / (1 + permutations))
    return WeatResult(effect, p, statistic, permutations, False)
