"""Bias diagnostics: planted gender direction recovered; WEAT effect size and exact p-value; transforms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from biasdiff.vectors.bias import cosine, gender_direction, gender_projection, weat
from biasdiff.embed.transforms import apply_transform, hard_debias, scale_bias


def _planted(d=40, p=9, strength=1.0, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    base = rng.normal(size=(p, d))
    female = base + strength * u + noise * rng.normal(size=(p, d))
    male = base - strength * u + noise * rng.normal(size=(p, d))
    return u, female, male


def test_gender_direction_recovers_a_planted_direction_with_woman_positive():
    u, female, male = _planted()
    g, explained = gender_direction(female, male)
    assert g @ u > 0.99
    assert np.linalg.norm(g) == pytest.approx(1.0)
    assert explained > 0.9
    # swapping which word of the first pair is "female" flips the sign: orientation follows woman - man
    g_swapped, _ = gender_direction(male, female)
    assert g_swapped @ u < -0.99
    proj = gender_projection(np.stack([female[0], male[0]]), g)
    assert proj[0] > proj[1]


def test_gender_projection_is_the_cosine_with_the_direction():
    g = np.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(
        gender_projection(np.array([[1.0, 1.0, 0.0], [0.0, -5.0, 0.0]]), g), [np.sqrt(0.5), -1.0]
    )
    np.testing.assert_allclose(
        cosine(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0], [0.0, 2.0]])), [[np.sqrt(0.5), 0.0]]
    )


def test_weat_effect_size_and_exact_p_value_on_a_hand_checked_case():
    # 2-d space: A = (1, 0) ("female"), B = (0, 1) ("male"); targets at angles, s(w) = cos(w, A) - cos(w, B)
    def at(deg):
        return np.array([[np.cos(np.radians(deg)), np.sin(np.radians(deg))]])

    a, b = at(0), at(90)
    x = np.concatenate([at(10), at(20)])
    y = np.concatenate([at(70), at(80)])
    s = np.array([np.cos(np.radians(t)) - np.sin(np.radians(t)) for t in (10, 20, 70, 80)])
    expected_d = (s[:2].mean() - s[2:].mean()) / s.std(ddof=1)
    res = weat(x, y, a, b, permutations=100)
    assert res.exact and res.n_permutations == 6  # C(4, 2) partitions
    assert res.effect_size == pytest.approx(expected_d)
    assert res.statistic == pytest.approx(s[:2].sum() - s[2:].sum())
    # X is the most female-associated partition: only itself reaches its statistic -> p = 1/6
    assert res.p_value == pytest.approx(1 / 6)
    # reversed roles: every partition reaches it -> p = 1
    assert weat(y, x, a, b, permutations=100).p_value == pytest.approx(1.0)


def test_weat_sampled_p_value_matches_exact_enumeration():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(4, 10)), rng.normal(size=(4, 10))
    x, y = rng.normal(size=(6, 10)) + 0.3 * a.mean(0), rng.normal(size=(6, 10))
    exact = weat(x, y, a, b, permutations=10_000)
    sampled = weat(x, y, a, b, permutations=500, seed=1)
    assert exact.exact and not sampled.exact
    assert sampled.effect_size == pytest.approx(exact.effect_size)
    assert abs(sampled.p_value - exact.p_value) < 0.05
    assert sampled.p_value == weat(x, y, a, b, permutations=500, seed=1).p_value
    # the exact p-value is the share of C(12, 6) partitions whose statistic is at least the observed one
    assert exact.n_permutations == len(list(itertools.combinations(range(12), 6)))


def test_hard_debias_removes_the_component_and_keeps_the_length():
    rng = np.random.default_rng(5)
    v, g = rng.normal(size=(4, 16)), rng.normal(size=16)
    out = hard_debias(v, g)
    np.testing.assert_allclose(out @ (g / np.linalg.norm(g)), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(v, axis=1))


@pytest.mark.parametrize("lam", [0.0, 0.5, 2.0, -1.0])
def test_bias_scale_multiplies_the_component_and_leaves_the_rest(lam):
    rng = np.random.default_rng(6)
    v, g = rng.normal(size=(3, 8)), rng.normal(size=8)
    g /= np.linalg.norm(g)
    out = scale_bias(v, g, lam)
    np.testing.assert_allclose(out @ g, lam * (v @ g), atol=1e-12)
    np.testing.assert_allclose(out - np.outer(out @ g, g), v - np.outer(v @ g, g))


def test_apply_transform_touches_only_neutral_rows():
    rng = np.random.default_rng(7)
    v, g = rng.normal(size=(3, 5)), rng.normal(size=5)
    neutral = np.array([True, False, True])
    out = apply_transform(v, neutral, g, "hard-debias")
    np.testing.assert_array_equal(out[1], v[1])
    assert not np.allclose(out[0], v[0])
    np.testing.assert_array_equal(apply_transform(v, neutral, g, "none"), v)
    with pytest.raises(ValueError, match="hard-debias"):
        apply_transform(v, neutral, g, "soft-debias")


def test_swap_exchanges_exactly_the_two_named_rows():
    rng = np.random.default_rng(1)
    v, g = rng.normal(size=(4, 6)), rng.normal(size=6)
    words = ["man", "nurse", "philosopher", "person"]
    out = apply_transform(v, np.ones(4, bool), g, "swap", words=words, targets=["nurse", "philosopher"])
    np.testing.assert_array_equal(out[[1, 2]], v[[2, 1]])
    np.testing.assert_array_equal(out[[0, 3]], v[[0, 3]])
    with pytest.raises(ValueError, match="doctor"):
        apply_transform(v, np.ones(4, bool), g, "swap", words=words, targets=["nurse", "doctor"])


def test_random_gives_seeded_directions_of_the_same_length():
    rng = np.random.default_rng(2)
    v, g = rng.normal(size=(3, 64)), rng.normal(size=64)
    words = ["nurse", "man", "person"]
    a = apply_transform(v, np.ones(3, bool), g, "random", words=words, targets=["nurse"], seed=5)
    b = apply_transform(v, np.ones(3, bool), g, "random", words=words, targets=["nurse"], seed=5)
    c = apply_transform(v, np.ones(3, bool), g, "random", words=words, targets=["nurse"], seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], c[0])
    assert np.linalg.norm(a[0]) == pytest.approx(np.linalg.norm(v[0]))
    assert abs(a[0] @ v[0]) / np.linalg.norm(v[0]) ** 2 < 0.5  # not the old direction
    np.testing.assert_array_equal(a[1:], v[1:])


def _decodable(x, y, seed=0):
    """Held-out accuracy of a fresh logistic regression (not the INLP classifier) predicting y from x."""
    from sklearn.linear_model import LogisticRegression

    half = len(y) // 2
    idx = np.random.default_rng(seed).permutation(len(y))
    tr, te = idx[:half], idx[half:]
    return LogisticRegression(max_iter=2000).fit(x[tr], y[tr]).score(x[te], y[te])


def test_inlp_removes_gender_that_hard_debias_leaves_decodable():
    """Gender planted in three directions (the main one and two weaker ones): removing the main direction
    (hard-debias) leaves it linearly decodable (Gonen & Goldberg 2019); INLP (Ravfogel et al. 2020) does not."""
    rng = np.random.default_rng(0)
    n, d = 600, 32
    y = np.repeat([1, 0], n // 2)
    sign = np.where(y == 1, 1.0, -1.0)
    x = rng.normal(size=(n, d))
    x[:, 0] += 2.0 * sign
    x[:, 1] += 1.5 * sign
    x[:, 2] += 1.5 * sign
    g = np.eye(d)[0]
    neutral = np.ones(n, bool)
    assert _decodable(x, y) > 0.95
    debiased = apply_transform(x, neutral, g, "hard-debias")
    assert _decodable(debiased, y) > 0.9
    inlp = apply_transform(x, neutral, g, "inlp", inlp={"vectors": x, "labels": y, "iterations": 10}, seed=0)
    assert _decodable(inlp, y) < 0.65
    np.testing.assert_allclose(np.linalg.norm(inlp, axis=1), np.linalg.norm(x, axis=1))  # lengths kept
