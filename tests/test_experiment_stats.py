"""Statistics across models: the replicate interval's coverage on simulated models with known variance components,
the method-of-moments between-model SD, arm differences against hand-derived references (Welch by formula,
Newcombe's published example), the paired difference's coverage when replicates share a seed effect, the gap
difference's coverage with one model per arm, and the dose-response slope on a planted logit-linear relation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from biasdiff.experiment.stats import (arm_difference, dose_response, gap_difference, replicate_interval,
                                      simulate_coverage)


def _truth_by_monte_carlo(mu_logit, tau, draws=2_000_000, seed=123):
    """E[expit(mu + tau Z)] by brute force (independent of the library's quadrature)."""
    z = np.random.default_rng(seed).standard_normal(draws)
    return float(expit(mu_logit + tau * z).mean())


@pytest.mark.parametrize("mu_logit,tau,replicates", [(-0.85, 0.5, 3), (0.0, 0.8, 5), (1.4, 0.4, 4)])
def test_interval_covers_the_population_of_models_near_95_percent(mu_logit, tau, replicates):
    n, sims = 200, 1500
    truth = _truth_by_monte_carlo(mu_logit, tau)
    rng = np.random.default_rng(7)
    hits_t = hits_naive = 0
    for _ in range(sims):
        p = expit(mu_logit + tau * rng.standard_normal(replicates))
        k = rng.binomial(n, p)
        res = replicate_interval(k, np.full(replicates, n))
        hits_t += res["ci_low"] <= truth <= res["ci_high"]
        # the interval that ignores between-model variance: Wilson on the pooled counts
        ci = stats.binomtest(int(k.sum()), n * replicates).proportion_ci(method="wilson")
        hits_naive += ci.low <= truth <= ci.high
    assert 0.92 <= hits_t / sims <= 0.985, hits_t / sims
    assert hits_naive / sims < 0.75  # what a sampling-only interval would claim: far from 95%
    # the library's own simulation agrees with this one on the truth
    assert simulate_coverage(mu_logit, tau, replicates, n, sims=50)["truth"] == pytest.approx(truth, abs=2e-3)


def test_between_model_sd_recovers_a_planted_tau():
    rng = np.random.default_rng(3)
    n, r, tau = 400, 300, 0.08
    p = np.clip(0.4 + tau * rng.standard_normal(r), 0, 1)
    res = replicate_interval(rng.binomial(n, p), np.full(r, n))
    assert res["between_sd"] == pytest.approx(tau, abs=0.012)
    assert res["sampling_sd"] == pytest.approx(math.sqrt(0.4 * 0.6 / n), abs=0.003)
    assert res["covers"].startswith("between models + sampling")


def test_one_replicate_is_wilson_and_says_sampling_only():
    res = replicate_interval([144], [200])
    ci = stats.binomtest(144, 200).proportion_ci(method="wilson")
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert res["covers"].startswith("sampling only") and math.isnan(res["between_sd"])


def test_bad_counts_are_rejected():
    with pytest.raises(ValueError):
        replicate_interval([5, 3], [4, 4])
    with pytest.raises(ValueError):
        replicate_interval([], [])


def test_difference_with_replicates_is_welch_by_formula():
    ka, kb, n = np.array([150, 120, 170]), np.array([40, 60, 20, 50]), 200
    pa, pb = ka / n, kb / n
    va, vb = pa.var(ddof=1) / 3, pb.var(ddof=1) / 4
    t = (pa.mean() - pb.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)
    res = arm_difference(ka, [n] * 3, kb, [n] * 4)
    assert res["difference"] == pytest.approx(pa.mean() - pb.mean())
    assert res["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), df))
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((t * math.sqrt(va + vb) - half, t * math.sqrt(va + vb) + half))
    assert res["covers"].startswith("between models")


def test_difference_of_single_models_is_newcombes_interval():
    # Newcombe (1998), Stat Med 17:873, Table II example (c): 56/70 vs 48/80, method 10: 0.0524 to 0.3339
    res = arm_difference([56], [70], [48], [80])
    assert res["difference"] == pytest.approx(0.2)
    assert res["ci_low"] == pytest.approx(0.0524, abs=1e-4) and res["ci_high"] == pytest.approx(0.3339, abs=1e-4)
    assert res["p_value"] == pytest.approx(stats.fisher_exact([[56, 14], [48, 32]]).pvalue)
    assert res["covers"].startswith("sampling only")


def test_dose_response_recovers_a_planted_slope():
    rng = np.random.default_rng(11)
    x = np.linspace(-0.4, 0.6, 12)
    n = np.full(12, 4000)
    k = rng.binomial(n, expit(-0.5 + 3.0 * x))
    fit = dose_response(x, k, n)
    assert fit["slope_ci_low"] <= 3.0 <= fit["slope_ci_high"] and fit["slope"] == pytest.approx(3.0, abs=0.3)
    assert fit["slope_p_value"] < 1e-6 and fit["n_points"] == 12
    flat = dose_response(x, rng.binomial(n, 0.3), n)
    assert flat["slope_ci_low"] <= 0 <= flat["slope_ci_high"]
    assert math.isnan(dose_response([0.1, 0.1, 0.1], [1, 2, 3], [10, 10, 10])["slope"])  # no spread in x


def test_paired_difference_is_the_t_interval_of_the_replicate_differences_by_formula():
    ka, kb, n = np.array([150, 120, 170]), np.array([100, 90, 150]), 200
    d = (ka - kb) / n
    res = arm_difference(ka, [n] * 3, kb, [n] * 3, paired=True)
    se = d.std(ddof=1) / math.sqrt(3)
    half = stats.t.ppf(0.975, 2) * se
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert res["p_value"] == pytest.approx(2 * stats.t.sf(abs(d.mean() / se), 2))
    assert "paired t on 3 replicate pairs" in res["covers"]
    with pytest.raises(ValueError, match="paired"):
        arm_difference([1, 2], [10, 10], [1, 2, 3], [10, 10, 10], paired=True)


def _shared_seed_arms(rng, mu_a, mu_b, seed_sd, tau, reps, n):
    """Replicate r of both arms shares a seed effect u_r (common random numbers) plus its own noise."""
    u = seed_sd * rng.standard_normal(reps)
    pa = expit(mu_a + u + tau * rng.standard_normal(reps))
    pb = expit(mu_b + u + tau * rng.standard_normal(reps))
    return rng.binomial(n, pa), rng.binomial(n, pb)


def test_paired_difference_covers_near_95_percent_and_is_narrower_when_seeds_are_shared():
    mu_a, mu_b, seed_sd, tau, reps, n, sims = 0.6, -0.4, 0.8, 0.15, 4, 200, 1500
    z = np.random.default_rng(5).standard_normal((2_000_000, 2))  # truth by brute force, independent of the code
    truth = float(expit(mu_a + seed_sd * z[:, 0] + tau * z[:, 1]).mean()
                  - expit(mu_b + seed_sd * z[:, 0] + tau * z[:, 1]).mean())
    rng = np.random.default_rng(9)
    hits, widths = {True: 0, False: 0}, {True: [], False: []}
    for _ in range(sims):
        ka, kb = _shared_seed_arms(rng, mu_a, mu_b, seed_sd, tau, reps, n)
        for paired in (True, False):
            res = arm_difference(ka, [n] * reps, kb, [n] * reps, paired=paired)
            hits[paired] += res["ci_low"] <= truth <= res["ci_high"]
            widths[paired].append(res["ci_high"] - res["ci_low"])
    assert 0.92 <= hits[True] / sims <= 0.98, hits[True] / sims
    assert np.mean(widths[True]) < 0.6 * np.mean(widths[False])  # the pairing removes the shared seed effect


def test_gap_difference_of_single_models_covers_near_95_percent():
    # one model per arm: the gap (word 1 - word 2) of arm a minus arm b from four independent binomial samples
    p, n, sims = np.array([0.72, 0.08, 0.30, 0.21]), 200, 3000
    truth = (p[0] - p[1]) - (p[2] - p[3])
    rng = np.random.default_rng(21)
    hits = 0
    for _ in range(sims):
        k = rng.binomial(n, p)
        res = gap_difference([[k[0], n, k[1], n]], [[k[2], n, k[3], n]])
        hits += res["ci_low"] <= truth <= res["ci_high"]
    assert 0.93 <= hits / sims <= 0.97, hits / sims
    assert res["covers"].startswith("sampling only")


def test_gap_difference_with_replicates_is_a_t_test_on_the_per_model_gaps():
    a = [[150, 200, 20, 200], [160, 200, 60, 200], [140, 200, 10, 200]]
    b = [[60, 200, 50, 200], [170, 200, 100, 200], [120, 200, 40, 200]]
    ga = np.array([0.65, 0.5, 0.65])
    gb = np.array([0.05, 0.35, 0.4])
    paired = gap_difference(a, b, paired=True)
    assert paired["difference"] == pytest.approx(ga.mean() - gb.mean())
    d = ga - gb
    assert paired["p_value"] == pytest.approx(2 * stats.t.sf(abs(d.mean() / (d.std(ddof=1) / math.sqrt(3))), 2))
    welch = gap_difference(a, b, paired=False)
    assert "Welch" in welch["covers"] and "paired" in paired["covers"]


def test_agreeing_replicates_get_the_pooled_wilson_interval_not_a_point():
    # three models at 1/200 each: no spread between them to estimate, but the proportion still has sampling variance
    res = replicate_interval([1, 1, 1], [200, 200, 200])
    ci = stats.binomtest(3, 600).proportion_ci(method="wilson")
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert res["ci_high"] - res["ci_low"] > 0.01 and res["covers"].startswith("sampling only (replicates agree")


def test_paired_replicates_of_unequal_counts_are_rejected_naming_the_estimator():
    with pytest.raises(ValueError, match="arm_difference: paired replicates need equal counts, got 3 and 2"):
        arm_difference([10, 12, 14], [50] * 3, [20, 22], [50] * 2, paired=True)
    with pytest.raises(ValueError, match="gap_difference: paired replicates need equal counts, got 2 and 3"):
        gap_difference([(30, 50, 10, 50)] * 2, [(30, 50, 10, 50), (25, 50, 12, 50), (28, 50, 9, 50)], paired=True)
    # unpaired, the same counts are Welch's question and need no pairing
    assert arm_difference([10, 12, 14], [50] * 3, [20, 22], [50] * 2)["covers"].startswith("between models")


def _simulated_gap_arms(rng, slope, intercept, x, reps, seed_sd, model_sd, arm_sd, n=200, base=0.4):
    """Per arm: the mean over `reps` models of the model's gap P(female | a) - P(female | b), each from n samples per
    word; replicate k shares a seed effect across arms (paired); each arm departs from the line by N(0, arm_sd)."""
    seed = rng.normal(0, seed_sd, reps)
    arm_mean = []
    for xa in x:
        gap = intercept + slope * xa + rng.normal(0, arm_sd) + seed + rng.normal(0, model_sd, reps)
        pa, pb = np.clip(base + gap / 2, 0, 1), np.clip(base - gap / 2, 0, 1)
        arm_mean.append(np.mean(rng.binomial(n, pa) / n - rng.binomial(n, pb) / n))
    return np.array(arm_mean)


def test_gap_dose_response_recovers_a_planted_slope_and_covers_it_near_95_percent():
    from biasdiff.experiment.stats import gap_dose_response

    x = np.array([0.59, -0.59, 0.0, 0.07, -0.06, -0.59, 0.30, 1.18])  # the projection gaps of experiment.yaml's arms
    rng = np.random.default_rng(7)
    hits_slope, hits_zero, slopes = 0, 0, []
    sims = 1000
    for _ in range(sims):
        y = _simulated_gap_arms(rng, 0.25, 0.35, x, reps=3, seed_sd=0.10, model_sd=0.06, arm_sd=0.05)
        fit = gap_dose_response(x, y)
        hits_slope += fit["slope_ci_low"] <= 0.25 <= fit["slope_ci_high"]
        slopes.append(fit["slope"])
        null = gap_dose_response(x, _simulated_gap_arms(rng, 0.0, 0.35, x, 3, 0.10, 0.06, 0.05))
        hits_zero += null["slope_p_value"] < 0.05
    assert abs(np.mean(slopes) - 0.25) < 0.01  # unbiased: the shared seed effects drop out of the slope
    assert 0.93 <= hits_slope / sims <= 0.97
    assert 0.03 <= hits_zero / sims <= 0.07  # the test's size under a flat line
    # by formula: the OLS line through the arm points
    y = np.array([0.6, 0.3, 0.4, 0.45, 0.38, 0.29, 0.5, 0.9])
    fit = gap_dose_response(x, y)
    slope, intercept = np.polyfit(x, y, 1)
    assert fit["slope"] == pytest.approx(slope) and fit["intercept"] == pytest.approx(intercept)
    assert fit["n_arms"] == 8 and 0 < fit["r_squared"] < 1 and fit["covers"].startswith("one point per arm")


def test_gap_dose_response_needs_three_arms_with_distinct_projection_gaps():
    from biasdiff.experiment.stats import gap_dose_response

    assert math.isnan(gap_dose_response([0.59, -0.59], [0.6, 0.1])["slope"])  # the demo's two arms
    assert math.isnan(gap_dose_response([0.0, 0.0, 0.0], [0.4, 0.3, 0.5])["slope"])
    fit = gap_dose_response([0.59, math.nan, -0.59, 0.0], [0.6, 0.5, 0.1, 0.4])  # an arm without a projection is left out
    assert fit["n_arms"] == 3 and not math.isnan(fit["slope"])
