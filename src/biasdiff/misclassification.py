"""Reading through an imperfect instrument: proportions corrected for misclassification (Rogan–Gladen) with
intervals that carry the error rates' uncertainty, and Cohen's κ between two instruments labelling the same items."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def rogan_gladen(p_observed: float, sensitivity: float, specificity: float) -> float:
    """The prevalence a misclassifying instrument's observed positive rate implies (Rogan & Gladen 1978):
    (p_observed + specificity - 1) / (sensitivity + specificity - 1), clipped to [0, 1]. nan when the instrument is
    no better than chance (sensitivity + specificity <= 1)."""
    informative = sensitivity + specificity - 1
    if not informative > 0:
        return math.nan
    return float(min(1.0, max(0.0, (p_observed + specificity - 1) / informative)))


def corrected_proportion(strata, positive, rates, confidence: float = 0.95, n_resamples: int = 2000,
                         seed: int = 0) -> dict[str, float]:
    """Misclassification-corrected proportion of positives among samples that fall into strata with their own
    instrument error rates (e.g. the image context): Σ_c (n_c / n) · RoganGladen(p_c, sens_c, spec_c).

    strata: (N,) the stratum of each sample; positive: (N,) bool, the instrument's reading; rates: {stratum:
    (k_sens, n_sens, k_spec, n_spec)}: the instrument read k_sens of n_sens known positives positive and k_spec of
    n_spec known negatives negative.

    Interval: the central `confidence` range of the estimate over `n_resamples` joint draws of every binomial input
    from its Jeffreys posterior (Beta(k + ½, n − k + ½) for each stratum's positive rate, sensitivity and
    specificity; Dirichlet(n_c + ½) for the strata's shares; scipy.stats), so it carries the sampling variance of
    the proportion AND of the error rates (not between-model variance). Unlike a percentile bootstrap it stays honest
    where a count is 0 or n (a calibration set read perfectly still leaves its rate uncertain; 1 positive in 200
    keeps an upper bound near the Jeffreys/Wilson one). Returns {estimate, ci_low, ci_high}; estimate nan (interval
    [0, 1]) when a stratum that holds samples has an instrument no better than chance. ValueError for a stratum
    without rates.
    """
    strata, positive = np.asarray(strata).astype(str), np.asarray(positive, dtype=bool)
    if strata.shape != positive.shape or strata.ndim != 1 or len(strata) == 0:
        raise ValueError(f"corrected_proportion needs equal-length non-empty strata and readings, got "
                         f"{strata.shape} and {positive.shape}")
    names = sorted(set(strata))
    missing = [c for c in names if c not in rates]
    if missing:
        raise ValueError(f"no sensitivity/specificity for stratum(s) {missing}; have {sorted(rates)}")
    counts = []
    for c in names:
        k_sens, n_sens, k_spec, n_spec = (int(v) for v in rates[c])
        for label, (a, b) in {"k_sens/n_sens": (k_sens, n_sens), "k_spec/n_spec": (k_spec, n_spec)}.items():
            if b < 1 or not 0 <= a <= b:
                raise ValueError(f"stratum {c!r}: need 0 <= {label} with n >= 1, got {a}/{b}")
        in_c = strata == c
        counts.append((int(in_c.sum()), int(positive[in_c].sum()), k_sens, n_sens, k_spec, n_spec))
    n_c, k_c, k_se, n_se, k_sp, n_sp = (np.array(col, dtype=float) for col in zip(*counts))

    def corrected(share, p, sens, spec):
        informative = sens + spec - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.clip((p + spec - 1) / informative, 0.0, 1.0)
        return np.sum(np.where(informative > 0, value, np.nan) * share, axis=-1)

    estimate = float(corrected(n_c / n_c.sum(), k_c / n_c, k_se / n_se, k_sp / n_sp))
    out = {"estimate": estimate, "ci_low": 0.0, "ci_high": 1.0}
    if math.isnan(estimate):
        return out
    rng = np.random.default_rng(seed)
    size = (n_resamples, len(names))
    draws = corrected(stats.dirichlet.rvs(n_c + 0.5, size=n_resamples, random_state=rng),
                      stats.beta.rvs(k_c + 0.5, n_c - k_c + 0.5, size=size, random_state=rng),
                      stats.beta.rvs(k_se + 0.5, n_se - k_se + 0.5, size=size, random_state=rng),
                      stats.beta.rvs(k_sp + 0.5, n_sp - k_sp + 0.5, size=size, random_state=rng))
    draws = np.where(np.isnan(draws), 0.5, draws)  # a draw at chance level says nothing: the middle, not a bound
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    out.update(ci_low=float(low), ci_high=float(high))
    return out


def rogan_gladen_interval(k: int, n: int, k_sens: int, n_sens: int, k_spec: int, n_spec: int,
                          confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """`corrected_proportion` for one stratum given as counts: k of n samples read positive. Returns {estimate,
    ci_low, ci_high, sensitivity, specificity}."""
    for name, (a, b) in {"k/n": (k, n), "k_sens/n_sens": (k_sens, n_sens), "k_spec/n_spec": (k_spec, n_spec)}.items():
        if b < 1 or not 0 <= a <= b:
            raise ValueError(f"rogan_gladen_interval needs 0 <= {name} with n >= 1, got {a}/{b}")
    out = corrected_proportion(np.zeros(n, dtype=int), np.arange(n) < k, {"0": (k_sens, n_sens, k_spec, n_spec)},
                               confidence, n_resamples, seed)
    return {**out, "sensitivity": k_sens / n_sens, "specificity": k_spec / n_spec}


def cohen_kappa(a, b) -> float:
    """Cohen's κ of two instruments' labels of the same items (scikit-learn's cohen_kappa_score): agreement beyond
    what their label frequencies give by chance. nan when chance agreement is 1 (both give one and the same label
    to every item: κ is undefined, the raw agreement says all)."""
    from sklearn.metrics import cohen_kappa_score

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"cohen_kappa needs two label vectors of one length, got {a.shape} and {b.shape}")
    labels = np.union1d(a, b)
    if len(labels) < 2:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(cohen_kappa_score(a, b, labels=labels))
