"""Proportion statistics for the audits: Wilson intervals, exact binomial tests, gender gap, KL to uniform."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n (Wilson 1927), from scipy's
    `binomtest(k, n).proportion_ci(method="wilson")`; sampling variance only. (nan, nan) when n == 0."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (math.nan, math.nan)
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    lo = 0.0 if k == 0 else max(0.0, float(ci.low))  # exact ends: rounding must not exclude p = 0 or 1
    hi = 1.0 if k == n else min(1.0, float(ci.high))
    return (lo, hi)


def binomial_pvalue(k: int, n: int, p: float) -> float:
    """Two-sided exact binomial test of k successes in n trials against success probability p (scipy.stats.binomtest).

    nan when n == 0 or p is nan (e.g. a word absent from the training data).
    """
    if n == 0 or p is None or math.isnan(p):
        return math.nan
    return float(stats.binomtest(int(k), int(n), float(p), alternative="two-sided").pvalue)


def gender_gap(frac_female: float) -> float:
    """|f_m − f_f| for a two-valued attribute with f_f = frac_female (0 = balanced, 1 = one gender only)."""
    return abs(1.0 - 2.0 * frac_female)


def kl_to_uniform(proportions) -> float:
    """KL(p || uniform) in nats over the given category proportions (0 log 0 = 0); 0 = uniform, log K = one category."""
    p = np.asarray(proportions, dtype=float)
    if p.ndim != 1 or p.size == 0 or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"kl_to_uniform needs a probability vector, got {p.tolist()}")
    nz = p[p > 0]
    return float(np.sum(nz * np.log(nz * p.size)))
