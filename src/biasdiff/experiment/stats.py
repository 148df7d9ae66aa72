"""Statistics across trained models: P(female) of an arm pooled over its replicates with an interval that includes
between-model variance, arm differences, the dose-response slope, and a coverage simulation of the interval.

Model: replicate r of an arm has its own true rate p_r (training noise: p_r varies between models around the arm's
mean mu, SD tau) and its samples give k_r ~ Binomial(n, p_r). The estimand is mu, the P(female) of the arm's
*population of models*, not of one model. Estimate: the mean of the replicates' proportions; interval: Student t on
those R proportions (the balanced one-way random-effects model: each replicate proportion has variance tau^2 +
p_r(1-p_r)/n, and their sample variance estimates that sum), so it covers between-model AND sampling variance.
Replicates whose proportions agree exactly (three models at 1/200 each) have no spread to estimate it from: the
interval is then Wilson's on the pooled counts, says so, and does not collapse to a point. (Flooring the variance at
its sampling part instead was measured too: it over-covers, 0.99-1.00, whenever tau is small.)
With one replicate tau is not estimable: the interval is then Wilson's on the one model's counts and covers sampling
variance only, and says so.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats
from scipy.special import expit, logit

from biasdiff.stats import wilson_interval

BETWEEN = "between models + sampling (t on {r} replicate proportions)"
SAMPLING = "sampling only (1 replicate: between-model variance not estimable)"
SAMPLING_TIED = "sampling only (replicates agree exactly: no spread to estimate between-model variance from)"
SAMPLING_DIFF = "sampling only (an arm with 1 replicate: between-model variance not estimable)"
GAP_FIT_COVERS = ("one point per arm (its pooled gap): between-model and sampling variance and each arm's departure "
                  "from the line")


def replicate_interval(k: Sequence[int], n: Sequence[int], confidence: float = 0.95) -> dict:
    """Pooled P(female) over replicates with counts k_r of n_r. Returns estimate, ci_low, ci_high, between_sd (tau by
    the method of moments; nan with one replicate), sampling_sd (one model's binomial SD, plug-in), n_replicates and
    `covers` (which variance the interval includes)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    if k.shape != n.shape or k.ndim != 1 or len(k) == 0 or np.any(n < 1) or np.any((k < 0) | (k > n)):
        raise ValueError(f"replicate_interval needs equal-length counts 0 <= k <= n, n >= 1; got k={k}, n={n}")
    p = k / n
    r = len(p)
    within = p * (1 - p) / np.maximum(n - 1, 1)  # unbiased for p_r(1 - p_r)/n
    out = {"estimate": float(p.mean()), "n_replicates": r, "sampling_sd": float(math.sqrt(np.mean(p * (1 - p) / n)))}
    if r == 1:
        lo, hi = wilson_interval(int(k[0]), int(n[0]), confidence)
        return {**out, "ci_low": lo, "ci_high": hi, "between_sd": math.nan, "covers": SAMPLING}
    if np.ptp(p) == 0:
        lo, hi = wilson_interval(int(k.sum()), int(n.sum()), confidence)
        return {**out, "ci_low": lo, "ci_high": hi, "between_sd": 0.0, "covers": SAMPLING_TIED}
    low, high = t_interval(p, confidence)
    tau2 = max(float(p.var(ddof=1)) - float(within.mean()), 0.0)
    return {**out, "ci_low": low, "ci_high": high, "between_sd": math.sqrt(tau2), "covers": BETWEEN.format(r=r)}


def t_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of per-model proportions (>= 2 values), clipped to [0, 1]; (nan, nan) otherwise."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return (math.nan, math.nan)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * float(values.std(ddof=1)) / math.sqrt(len(values))
    m = float(values.mean())
    return (max(0.0, m - half), min(1.0, m + half))


def arm_difference(k_a: Sequence[int], n_a: Sequence[int], k_b: Sequence[int], n_b: Sequence[int],
                   confidence: float = 0.95, paired: bool = False) -> dict:
    """Pooled P(female) of arm a minus arm b. With >= 2 replicates in each: a t test on the replicate proportions,
    covering between-model and sampling variance: `paired` (replicate r of a and of b share their seeds, or are two
    words of one model: scipy.stats.ttest_rel on the R differences) or Welch's (scipy.stats.ttest_ind, unequal
    variances). Otherwise: the counts pooled per arm, Newcombe's hybrid score interval (statsmodels) and Fisher's
    exact p (scipy): sampling only. Returns difference, ci_low, ci_high, p_value, covers."""
    pa = np.asarray(k_a, dtype=float) / np.asarray(n_a, dtype=float)
    pb = np.asarray(k_b, dtype=float) / np.asarray(n_b, dtype=float)
    diff = float(pa.mean() - pb.mean())
    t = _t_difference(pa, pb, paired, confidence, "arm_difference")
    if t is not None:
        return {"difference": diff, **t}
    from statsmodels.stats.proportion import confint_proportions_2indep

    ka, na, kb, nb = (int(np.sum(x)) for x in (k_a, n_a, k_b, n_b))
    lo, hi = confint_proportions_2indep(ka, na, kb, nb, method="newcomb", compare="diff", alpha=1 - confidence)
    p = stats.fisher_exact([[ka, na - ka], [kb, nb - kb]]).pvalue
    covers = SAMPLING_DIFF if min(len(pa), len(pb)) < 2 else "sampling only (no spread between replicates)"
    return {"difference": diff, "ci_low": float(lo), "ci_high": float(hi), "p_value": float(p), "covers": covers}


def _t_difference(a: np.ndarray, b: np.ndarray, paired: bool, confidence: float, caller: str) -> dict | None:
    """t interval and p of mean(a) - mean(b) from per-model values (paired: ttest_rel; else Welch); None with fewer
    than 2 values a side or no spread to estimate a variance from. Paired values of unequal counts: ValueError."""
    if paired and len(a) != len(b):
        raise ValueError(f"{caller}: paired replicates need equal counts, got {len(a)} and {len(b)}")
    if len(a) < 2 or len(b) < 2:
        return None
    if paired:
        if np.ptp(a - b) == 0:
            return None
        res = stats.ttest_rel(a, b)
        covers = f"between models + sampling (paired t on {len(a)} replicate pairs)"
    else:
        if a.std() == 0 and b.std() == 0:
            return None
        res = stats.ttest_ind(a, b, equal_var=False)
        covers = f"between models + sampling (Welch t, {len(a)} vs {len(b)} replicates)"
    ci = res.confidence_interval(confidence_level=confidence)
    return {"ci_low": float(ci.low), "ci_high": float(ci.high), "p_value": float(res.pvalue), "covers": covers}


def gap_difference(gap_a: Sequence[Sequence[int]], gap_b: Sequence[Sequence[int]], confidence: float = 0.95,
                   paired: bool = False) -> dict:
    """Difference between two arms of a within-model gap P(female | word 1) - P(female | word 2). `gap_a`, `gap_b`:
    per replicate (k1, n1, k2, n2). With >= 2 replicates a side: t on the per-model gaps (paired by replicate, or
    Welch), covering between-model and sampling variance. Otherwise the counts pooled per arm and word, and a Wald
    interval of the difference of differences (four independent binomial samples; normal approximation): sampling
    only. Returns difference, ci_low, ci_high, p_value, covers."""
    a, b = np.asarray(gap_a, dtype=float).reshape(-1, 4), np.asarray(gap_b, dtype=float).reshape(-1, 4)
    ga, gb = a[:, 0] / a[:, 1] - a[:, 2] / a[:, 3], b[:, 0] / b[:, 1] - b[:, 2] / b[:, 3]
    diff = float(ga.mean() - gb.mean())
    t = _t_difference(ga, gb, paired, confidence, "gap_difference")
    if t is not None:
        return {"difference": diff, **t}
    pooled = np.concatenate([a.sum(axis=0), b.sum(axis=0)])  # k1 n1 k2 n2 of a, then of b
    props = pooled[0::2] / pooled[1::2]
    est = float(props[0] - props[1] - props[2] + props[3])
    se = math.sqrt(float(np.sum(props * (1 - props) / pooled[1::2])))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else (1.0 if est == 0 else 0.0)
    covers = ("sampling only (an arm with 1 replicate: between-model variance not estimable; Wald)"
              if min(len(ga), len(gb)) < 2 else "sampling only (no spread between replicates; Wald)")
    return {"difference": est, "ci_low": est - z * se, "ci_high": est + z * se, "p_value": p, "covers": covers}


def smoothed_logit(k: float, n: float) -> float:
    """logit((k + 1/2) / (n + 1)): finite at k = 0 and k = n (the empirical logit)."""
    return float(logit((k + 0.5) / (n + 1.0)))


def dose_response(x: Sequence[float], k: Sequence[int], n: Sequence[int], confidence: float = 0.95) -> dict:
    """OLS of the empirical logit of P(female) on the embedding's gender projection, one point per (arm, word)
    (statsmodels). The slope's interval covers the points' scatter about the line: sampling, between-model variance
    and whatever differs between words besides their projection. Needs >= 3 points with distinct x (and not all
    the same y: no slope to estimate)."""
    import statsmodels.api as sm

    x = np.asarray(x, dtype=float)
    y = np.array([smoothed_logit(a, b) for a, b in zip(k, n)])
    nan = {"slope": math.nan, "slope_ci_low": math.nan, "slope_ci_high": math.nan, "slope_p_value": math.nan,
           "intercept": math.nan, "r_squared": math.nan, "n_points": int(len(x))}
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return nan
    fit = sm.OLS(y, sm.add_constant(x)).fit()
    lo, hi = fit.conf_int(alpha=1 - confidence)[1]
    return {"slope": float(fit.params[1]), "slope_ci_low": float(lo), "slope_ci_high": float(hi),
            "slope_p_value": float(fit.pvalues[1]), "intercept": float(fit.params[0]), "r_squared": float(fit.rsquared),
            "n_points": int(len(x))}


def gap_dose_response(projection_gap: Sequence[float], gap: Sequence[float], confidence: float = 0.95) -> dict:
    """Does the within-model gap follow the embedding? OLS (statsmodels) of each arm's pooled gap P(female | a) -
    P(female | b) on the arm's projection gap (a's gender projection minus b's), one point per arm: the slope is the
    gap per unit of projection gap, with an interval covering between-model and sampling variance and each arm's
    departure from the line (GAP_FIT_COVERS); replicate seeds shared by all arms (paired) shift every arm's mean
    alike and drop out of the slope. The intercept (the line's gap at projection gap 0) is a point estimate only:
    with paired seeds the seeds' shared effect sits in it, and OLS's interval would not cover it (0.46-0.61 coverage
    in tests/test_experiment_stats.py's simulation); the arms whose two vectors have no gender difference carry that
    gap with a between-model interval. Needs >= 3 arms with distinct projection gaps."""
    import statsmodels.api as sm

    x, y = np.asarray(projection_gap, dtype=float), np.asarray(gap, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    out = {key: math.nan for key in ("slope", "slope_ci_low", "slope_ci_high", "slope_p_value", "intercept",
                                     "r_squared")}
    out.update({"n_arms": int(len(x)), "covers": GAP_FIT_COVERS})
    if len(x) < 3 or len(np.unique(x)) < 2:
        return out
    fit = sm.OLS(y, sm.add_constant(x)).fit()
    lo, hi = fit.conf_int(alpha=1 - confidence)[1]
    out.update({"slope": float(fit.params[1]), "slope_ci_low": float(lo), "slope_ci_high": float(hi),
                "slope_p_value": float(fit.pvalues[1]), "intercept": float(fit.params[0]),
                "r_squared": float(fit.rsquared)})
    return out


def simulate_coverage(mu_logit: float, tau: float, replicates: int, n: int, sims: int = 2000, seed: int = 0,
                      confidence: float = 0.95) -> dict:
    """Coverage of `replicate_interval` on data with known variance components: each of `replicates` models has
    p_r = expit(mu_logit + tau * z), z ~ N(0, 1), and draws k_r ~ Binomial(n, p_r). The truth is the population mean
    E[p_r] (by quadrature). Returns {truth, coverage, mean_width, sims}."""
    from scipy.integrate import quad

    truth = quad(lambda z: expit(mu_logit + tau * z) * stats.norm.pdf(z), -10, 10)[0]
    rng = np.random.default_rng(seed)
    hits, widths = 0, []
    for _ in range(sims):
        p = expit(mu_logit + tau * rng.standard_normal(replicates))
        k = rng.binomial(n, p)
        res = replicate_interval(k, np.full(replicates, n), confidence)
        hits += res["ci_low"] <= truth <= res["ci_high"]
        widths.append(res["ci_high"] - res["ci_low"])
    return {"truth": truth, "coverage": hits / sims, "mean_width": float(np.mean(widths)), "sims": sims}
