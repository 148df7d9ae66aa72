"""JL projection: deterministic by seed, different across seeds, N(0, 1/k) entries; distortion on known cases."""

from __future__ import annotations

import numpy as np
import pytest

from biasdiff.vectors.projection import distortion, jl_matrix, l2_normalize, pairwise_distances, project_jl


def test_same_seed_same_matrix_and_different_seed_different_matrix():
    a, b, c = jl_matrix(50, 128, seed=0), jl_matrix(50, 128, seed=0), jl_matrix(50, 128, seed=1)
    assert a.shape == (128, 50)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    x = np.random.default_rng(0).normal(size=(5, 50))
    np.testing.assert_array_equal(project_jl(x, a), project_jl(x, b))
    assert not np.allclose(project_jl(x, a), project_jl(x, c))


def test_entries_have_variance_one_over_k_so_norms_are_kept_on_average():
    k = 256
    r = jl_matrix(300, k, seed=7)
    assert abs(r.mean()) < 0.01
    assert r.var() == pytest.approx(1.0 / k, rel=0.02)
    x = np.random.default_rng(1).normal(size=(500, 300))
    norms = np.linalg.norm(project_jl(x, r), axis=1)  # inputs are normalised first
    assert norms.mean() == pytest.approx(1.0, abs=0.02)


def test_projection_normalises_inputs_first():
    r = jl_matrix(4, 8, seed=0)
    x = np.array([[3.0, 0, 0, 4.0], [0, 0, 0, 0]])
    np.testing.assert_allclose(project_jl(x, r), l2_normalize(x) @ r.T)
    np.testing.assert_allclose(project_jl(10 * x, r), project_jl(x, r))
    assert np.all(project_jl(x, r)[1] == 0)


def test_pairwise_distances_of_a_3_4_5_triangle():
    pts = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    np.testing.assert_allclose(pairwise_distances(pts), [3.0, 4.0, 5.0])


def test_distortion_known_answers():
    pts = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    # an isometry (rotation + embedding in 3-d) has no distortion
    rot = np.array([[0.6, -0.8, 0.0], [0.8, 0.6, 0.0]])
    iso = distortion(pts, pts @ rot)
    assert iso["max"] == pytest.approx(0.0, abs=1e-12) and iso["mean"] == pytest.approx(0.0, abs=1e-12)
    # stretching the x axis by 2: distances 3 -> 6, 4 -> 4, 5 -> sqrt(36 + 16); |ratio - 1| = 1, 0, sqrt(52)/5 - 1
    stretched = pts * np.array([2.0, 1.0])
    dev = [1.0, 0.0, np.sqrt(52.0) / 5.0 - 1.0]
    out = distortion(pts, stretched)
    assert out["max"] == pytest.approx(1.0)
    assert out["mean"] == pytest.approx(np.mean(dev))
    assert out["n_pairs"] == 3 and out["n_words"] == 3
    assert out["min_ratio"] == pytest.approx(1.0) and out["max_ratio"] == pytest.approx(2.0)


def test_distortion_shrinks_as_k_grows():
    x = l2_normalize(np.random.default_rng(2).normal(size=(60, 300)))
    means = [distortion(x, project_jl(x, jl_matrix(300, k, seed=0)))["mean"] for k in (16, 128, 1024)]
    assert means[0] > means[1] > means[2]
