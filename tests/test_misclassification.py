"""Misclassification-corrected proportions (Rogan–Gladen), checked against known truth by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from biasdiff.misclassification import rogan_gladen, rogan_gladen_interval


def test_rogan_gladen_inverts_a_known_misclassification():
    # truth 0.3, sensitivity 0.8, specificity 0.9: observed = 0.3 * 0.8 + 0.7 * 0.1 = 0.31
    assert rogan_gladen(0.31, 0.8, 0.9) == pytest.approx(0.3)
    assert rogan_gladen(0.9, 0.8, 0.9) == 1.0 and rogan_gladen(0.05, 0.8, 0.9) == 0.0  # clipped
    assert rogan_gladen(0.4, 0.8, 1.0) == pytest.approx(0.5)  # no false positives: only the misses are added back
    assert math.isnan(rogan_gladen(0.5, 0.5, 0.5))  # a chance-level instrument says nothing


@pytest.mark.parametrize("truth, sens, spec", [(0.3, 0.75, 0.95), (0.6, 0.9, 0.7)])
def test_interval_covers_the_truth_at_about_the_nominal_rate(truth, sens, spec):
    """Seeded simulation: draw the word's samples and the two calibration sets from known rates, check how often the
    95% interval holds the true prevalence (binomial spread of the rate over 200 runs is about ±3 points)."""
    rng = np.random.default_rng(7)
    n, n_sens, n_spec, runs = 200, 150, 150, 200
    observed_rate = truth * sens + (1 - truth) * (1 - spec)
    covered, estimates = 0, []
    for run in range(runs):
        k = rng.binomial(n, observed_rate)
        r = rogan_gladen_interval(k, n, rng.binomial(n_sens, sens), n_sens, rng.binomial(n_spec, spec), n_spec,
                                  n_resamples=500, seed=run)
        covered += r["ci_low"] <= truth <= r["ci_high"]
        estimates.append(r["estimate"])
    assert 0.89 <= covered / runs <= 0.995, covered / runs
    assert abs(np.mean(estimates) - truth) < 0.02  # nearly unbiased at these sizes
    # the raw proportion is biased by the instrument, so the correction is not a no-op here
    assert abs(observed_rate - truth) > 0.02


def test_interval_is_wider_than_the_sampling_only_one_and_validates_counts():
    r = rogan_gladen_interval(62, 200, 120, 150, 140, 150, seed=0)
    assert r["ci_low"] < r["estimate"] < r["ci_high"]
    exact = rogan_gladen_interval(62, 200, 1500, 1875, 1400, 1500, seed=0)  # same rates, far larger calibration sets
    assert exact["ci_high"] - exact["ci_low"] < r["ci_high"] - r["ci_low"]
    chance = rogan_gladen_interval(50, 100, 50, 100, 50, 100)
    assert math.isnan(chance["estimate"]) and (chance["ci_low"], chance["ci_high"]) == (0.0, 1.0)
    with pytest.raises(ValueError, match="k_sens/n_sens"):
        rogan_gladen_interval(1, 10, 5, 0, 1, 10)


def test_stratified_correction_covers_the_truth_where_contexts_misread_differently():
    """Two contexts whose instrument errs differently (one misses women, one invents them): the stratified
    correction recovers the word's true share of women at about the nominal rate; correcting the pooled rate with
    one context's error rates would not."""
    from biasdiff.misclassification import corrected_proportion

    rng = np.random.default_rng(11)
    truth_by = {"library": 0.2, "hospital": 0.7}
    share = {"library": 0.4, "hospital": 0.6}
    sens = {"library": 0.6, "hospital": 0.95}
    spec = {"library": 0.97, "hospital": 0.8}
    truth = sum(share[c] * truth_by[c] for c in share)
    n, n_cal, runs, covered, estimates = 300, 120, 150, 0, []
    for run in range(runs):
        strata = rng.choice(list(share), size=n, p=list(share.values()))
        female = rng.random(n) < np.array([truth_by[c] for c in strata])
        hit = rng.random(n)
        read = np.where(female, hit < np.array([sens[c] for c in strata]), hit > np.array([spec[c] for c in strata]))
        rates = {c: (rng.binomial(n_cal, sens[c]), n_cal, rng.binomial(n_cal, spec[c]), n_cal) for c in share}
        r = corrected_proportion(strata, read, rates, n_resamples=400, seed=run)
        covered += r["ci_low"] <= truth <= r["ci_high"]
        estimates.append(r["estimate"])
    assert 0.88 <= covered / runs <= 0.995, covered / runs
    assert abs(np.mean(estimates) - truth) < 0.02
    observed = sum(share[c] * (truth_by[c] * sens[c] + (1 - truth_by[c]) * (1 - spec[c])) for c in share)
    assert abs(rogan_gladen(observed, sens["hospital"], spec["hospital"]) - truth) > 0.05


def test_stratified_correction_refuses_a_context_without_rates():
    from biasdiff.misclassification import corrected_proportion

    with pytest.raises(ValueError, match="library"):
        corrected_proportion(["library", "hospital"], [True, False], {"hospital": (9, 10, 9, 10)})


def test_cohen_kappa_against_the_hand_count():
    from biasdiff.misclassification import cohen_kappa

    a = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0])
    b = np.array([1, 1, 1, 0, 0, 0, 0, 1, 1, 1])
    # 2x2 by hand: both 1: 4, a1 b0: 1, a0 b1: 2, both 0: 3 -> po = 0.7; pe = 0.5*0.6 + 0.5*0.4 = 0.5 -> κ = 0.4
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert abs(cohen_kappa(rng.random(4000) < 0.3, rng.random(4000) < 0.6)) < 0.05  # independent raters
    assert math.isnan(cohen_kappa(np.zeros(5), np.zeros(5)))  # one label everywhere: undefined


def test_interval_stays_honest_at_the_edges():
    """1 woman in 200 samples read by an instrument that was perfect on 100 + 100 calibration images: the estimate is
    the raw 0.005, and the interval keeps the binomial uncertainty of both (Jeffreys' upper bound for 1/200 alone is
    0.024, a little lower here since the specificity may be below 1 and some of the few positives false; a percentile
    bootstrap gives [0, 0.015], treating the perfect calibration as certain and the single positive as the whole
    story)."""
    from biasdiff.misclassification import corrected_proportion

    r = corrected_proportion(["none"] * 200, np.arange(200) < 1, {"none": (100, 100, 100, 100)}, seed=0)
    assert r["estimate"] == pytest.approx(0.005)
    assert 0.0 <= r["ci_low"] < 0.005 and 0.019 <= r["ci_high"] <= 0.04, r
    same = corrected_proportion(["none"] * 200, np.arange(200) < 1, {"none": (100, 100, 100, 100)}, seed=0)
    assert same == r  # seeded
