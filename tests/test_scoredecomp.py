"""ScoreDecomp, simplex least squares and the ELBO classifier on known ground truth.

The planted model is the exact ε-predictor for data made of K point masses μ_k (one per word): conditioned on
word k it returns (x_t − √ᾱ μ_k)/√(1−ᾱ); under the null condition it returns the posterior mixture
Σ_k p(k | x_t) ε̂_k. So the null output is exactly a convex combination of the word outputs, with the posterior as
weights: ScoreDecomp must recover those weights and the label of each image.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from biasdiff.errors import ConfigError, DataError
from biasdiff.scores import (
    NULL,
    WordDDPMScore,
    decompose,
    elbo_classify,
    even_timesteps,
    score_decomp,
    simplex_least_squares,
)
from biasdiff.scores.simplex import simplex_least_squares_brute_force


# ---------------------------------------------------------------------------------------------- simplex LS
def _objective(S, s0, w):
    return float(np.sum((S @ w - s0) ** 2))


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_simplex_least_squares_matches_brute_force(k):
    rng = np.random.default_rng(k)
    boundary = 0
    for case in range(60):
        d = int(rng.integers(k - 1, 12))  # includes d < K (rank-deficient S)
        S = rng.normal(size=(d, k))
        if case % 3 == 0:  # s0 inside the hull of the columns: interior, exact fit
            w_true = rng.dirichlet(np.ones(k))
            s0 = S @ w_true
        else:  # anywhere: often projected onto a face of the simplex
            s0 = rng.normal(size=d) * 3
        w = simplex_least_squares(S, s0)
        ref = simplex_least_squares_brute_force(S, s0)
        assert w.shape == (k,) and (w >= 0).all() and np.isclose(w.sum(), 1.0)
        assert _objective(S, s0, w) <= _objective(S, s0, ref) + 1e-9
        if np.linalg.matrix_rank(S.T @ S - S.T @ S @ np.ones((k, k)) / k) == k - 1 and d >= k:
            np.testing.assert_allclose(w, ref, atol=1e-6)  # unique optimum: same point
        boundary += int((ref < 1e-9).any())
    assert boundary > 5, "the random cases must include solutions on the simplex boundary"


def test_simplex_least_squares_boundary_exact():
    # s0 beyond vertex 0: the optimum is the vertex itself, exactly.
    S = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(simplex_least_squares(S, np.array([5.0, -1.0, -1.0])), [1, 0, 0], atol=1e-12)
    # s0 off the middle of edge 0-1: projected onto the edge, weight 0 on vertex 2.
    w = simplex_least_squares(S, np.array([0.5, 0.5, -3.0]))
    np.testing.assert_allclose(w, [0.5, 0.5, 0.0], atol=1e-9)
    # K = 2 closed form against a dense grid.
    rng = np.random.default_rng(0)
    for _ in range(20):
        S2, s0 = rng.normal(size=(6, 2)), rng.normal(size=6)
        grid = np.linspace(0, 1, 100001)
        W = np.stack([grid, 1 - grid])  # (2, G)
        best = grid[np.argmin(((S2 @ W - s0[:, None]) ** 2).sum(0))]
        assert abs(simplex_least_squares(S2, s0)[0] - best) < 2e-5


def test_simplex_least_squares_rejects_bad_input():
    with pytest.raises(DataError, match="expected"):
        simplex_least_squares(np.ones((3, 2)), np.ones(4))
    with pytest.raises(DataError, match="NaN"):
        simplex_least_squares(np.array([[np.nan, 1.0], [1.0, 1.0]]), np.ones(2))


# ---------------------------------------------------------------------------------------------- planted model
class PlantedMixture(torch.nn.Module):
    """Exact ε̂ for point masses μ_k (word k = one-hot cond row k); zero cond row = posterior mixture."""

    def __init__(self, mus: torch.Tensor, scheduler: DDPMScheduler):
        super().__init__()
        self.register_buffer("mus", mus)  # (K, C, H, W)
        self.register_buffer("abar", scheduler.alphas_cumprod.float())

    def forward(self, sample, timestep, cond):
        a = self.abar[timestep.long()].view(-1, 1, 1, 1)
        eps_k = (sample[:, None] - a.sqrt()[:, None] * self.mus[None]) / (1 - a).sqrt()[:, None]  # (B, K, ...)
        logp = -0.5 * ((sample[:, None] - a.sqrt()[:, None] * self.mus[None]) ** 2).flatten(2).sum(2) / (1 - a.view(-1, 1))
        post = torch.softmax(logp, dim=1)  # (B, K)
        is_null = cond.abs().sum(1) == 0
        weights = torch.where(is_null[:, None], post, cond[:, : self.mus.shape[0]])
        return (weights[:, :, None, None, None] * eps_k).sum(1)


def _planted(k=2, n_per=6, size=4, seed=0, batch_size=16):
    gen = torch.Generator().manual_seed(seed)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    mus = torch.rand((k, 3, size, size), generator=gen) * 2 - 1
    model = PlantedMixture(mus, sched)
    words = ["man", "woman", "nurse", "person"][:k]
    conditioning = {w: np.eye(k, dtype=np.float32)[i] for i, w in enumerate(words)}
    score = WordDDPMScore(model, sched.config, conditioning, batch_size=batch_size)
    labels = np.repeat(np.arange(k), n_per)
    x0 = mus[labels] + 0.05 * torch.randn((len(labels), 3, size, size), generator=gen)
    return score, words, x0, labels


def test_scoredecomp_recovers_planted_labels_and_posterior():
    score, words, x0, labels = _planted(k=3)
    seeds = np.arange(len(labels)) + 100
    res = score_decomp(score, x0, seeds, words, base=NULL, timesteps=[50, 300], n_draws=2,
                       variants=["simplex", "cosine", "neg_l2", "neg_l1", "pca_simplex"])
    for variant in ("simplex", "neg_l2", "pca_simplex"):
        np.testing.assert_array_equal(res[variant].labels(), labels, err_msg=variant)
    # simplex weights are proportions (rows on the simplex) with the majority on the true word
    w = res["simplex"].scores
    assert np.allclose(w.sum(-1), 1) and (w >= -1e-12).all()
    assert (res["simplex"].mean_scores()[np.arange(len(labels)), labels] > 0.5).all()


def test_scoredecomp_simplex_weights_equal_posterior_mixture():
    score, words, x0, _ = _planted(k=2, n_per=3)
    t = 600  # noisy enough that the posterior is genuinely mixed
    res = score_decomp(score, x0, [7, 8, 9, 10, 11, 12], words, timesteps=[t], n_draws=1, variants=["simplex"])
    from biasdiff.scores.noise import shared_noise

    noise = shared_noise([7, 8, 9, 10, 11, 12], t, 0, x0.shape[1:])
    x_t = score.add_noise(x0, noise, torch.full((6,), t))
    null_out = score.predict(x_t, torch.full((6,), t), torch.zeros(6, dtype=torch.long))
    eps = score.predict_conditions(x_t, torch.full((6,), t), score.condition_ids(words))
    expected = np.stack([simplex_least_squares(eps[:, i].flatten(1).T.numpy(), null_out[i].flatten().numpy())
                         for i in range(6)])
    np.testing.assert_allclose(res["simplex"].scores[:, 0, 0], expected, atol=1e-6)
    # and the reconstruction is exact: the null output lies in the hull
    recon = np.einsum("k,kd->d", expected[0], eps[:, 0].flatten(1).numpy())
    np.testing.assert_allclose(recon, null_out[0].flatten().numpy(), atol=1e-4)


def test_scoredecomp_counts_evaluations_exactly_and_subsets_reproduce():
    score, words, x0, labels = _planted(k=2, n_per=5, batch_size=7)  # batch size not a multiple of anything
    seeds = np.arange(10)
    before = score.evals
    full = score_decomp(score, x0, seeds, words, timesteps=[20, 200, 500], n_draws=3, variants=["simplex", "cosine"])
    assert score.evals - before == 10 * 3 * 3 * 3  # N · (K + 1) · T · R
    assert full["simplex"].evals_per_image == 27
    assert full["simplex"].evals_for([1], 1) == 3
    before = score.evals
    single = score_decomp(score, x0, seeds, words, timesteps=[200], n_draws=1, variants=["simplex", "cosine"])
    assert score.evals - before == 10 * 3
    # the (t=200, draw 0) slice of the big run is exactly the small run: same shared noise
    np.testing.assert_allclose(full["cosine"].scores[:, 1, 0], single["cosine"].scores[:, 0, 0], atol=1e-6)
    np.testing.assert_array_equal(full["simplex"].labels([1], 1), single["simplex"].labels())


def test_scoredecomp_is_deterministic_and_batch_invariant():
    score, words, x0, _ = _planted(k=2, n_per=4, batch_size=3)
    a = score_decomp(score, x0, np.arange(8), words, timesteps=[400], n_draws=2, variants=["neg_l2"])
    score.batch_size = 16
    b = score_decomp(score, x0, np.arange(8), words, timesteps=[400], n_draws=2, variants=["neg_l2"], chunk=5)
    np.testing.assert_allclose(a["neg_l2"].scores, b["neg_l2"].scores, rtol=1e-5)


def test_scoredecomp_rejects_bad_config():
    score, words, x0, _ = _planted(k=2, n_per=1)
    with pytest.raises(ConfigError, match="variants"):
        score_decomp(score, x0, [0, 1], words, variants=["dot"])
    with pytest.raises(ConfigError, match="not known"):
        score_decomp(score, x0, [0, 1], ["man", "doctor"])
    with pytest.raises(ConfigError, match="outside"):
        score_decomp(score, x0, [0, 1], words, timesteps=[1000])


def test_decompose_variants_on_hand_made_vectors():
    base = np.array([[1.0, 0.0]])
    attrs = np.array([[[1.0, 0.1]], [[-1.0, 0.0]]])  # (K=2, B=1, d=2)
    assert decompose(base, attrs, "cosine").argmax() == 0
    np.testing.assert_allclose(decompose(base, attrs, "neg_l2"), [[-0.1, -2.0]])
    np.testing.assert_allclose(decompose(base, attrs, "neg_l1"), [[-0.1, -2.0]])
    # projection of s0 on the segment [s2, s1]: a = <s0 - s2, s1 - s2> / ||s1 - s2||^2 = 4 / 4.01
    np.testing.assert_allclose(decompose(base, attrs, "simplex"), [[4 / 4.01, 0.01 / 4.01]], atol=1e-12)


# ---------------------------------------------------------------------------------------------- ELBO baseline
def test_even_timesteps_grid():
    assert even_timesteps(4, 1000) == [125, 375, 625, 875]
    assert even_timesteps(1, 1000) == [500]
    with pytest.raises(ConfigError, match="between 1 and 1000"):
        even_timesteps(0, 1000)


def test_elbo_classifies_planted_images_and_counts_exactly():
    score, words, x0, labels = _planted(k=3, n_per=4, batch_size=5)
    before = score.evals
    res = elbo_classify(score, x0, np.arange(12), words, stages=[(10, 1)], n_trials=2)
    np.testing.assert_array_equal(res.labels, labels)
    assert (res.evals == 3 * 10 * 2).all() and score.evals - before == 12 * 60


def test_elbo_pruning_counts_exactly():
    score, words, x0, labels = _planted(k=3, n_per=2)
    before = score.evals
    res = elbo_classify(score, x0, np.arange(6), words, stages=[(2, 2), (8, 1)])
    first = even_timesteps(2, 1000)
    new = [t for t in even_timesteps(8, 1000) if t not in first]
    per_image = 3 * len(first) + 2 * len(new)
    assert (res.evals == per_image).all() and score.evals - before == 6 * per_image
    np.testing.assert_array_equal(res.labels, labels)
    assert np.isfinite(res.errors).all()  # pruned classes keep the mean error of the stages they took part in


def test_elbo_uses_the_same_noise_as_scoredecomp():
    """At equal (image seed, t, draw) both methods see the same x_t: the ELBO error of a class equals the
    squared distance between that class's output and the true ε recomputed from ScoreDecomp's noise."""
    score, words, x0, _ = _planted(k=2, n_per=1)
    res = elbo_classify(score, x0, [3, 4], words, stages=[(1, 1)])
    from biasdiff.scores.noise import shared_noise

    t = even_timesteps(1, 1000)[0]
    noise = shared_noise([3, 4], t, 0, x0.shape[1:])
    x_t = score.add_noise(x0, noise, torch.full((2,), t))
    out = score.predict_conditions(x_t, torch.full((2,), t), score.condition_ids(words))
    err = ((out - noise[None]) ** 2).flatten(2).mean(2).T.numpy()
    np.testing.assert_allclose(res.errors, err, rtol=1e-5)


def test_elbo_rejects_bad_stages():
    score, words, x0, _ = _planted(k=2, n_per=1)
    with pytest.raises(ConfigError, match="keep = 1"):
        elbo_classify(score, x0, [0, 1], words, stages=[(4, 2)])
    with pytest.raises(ConfigError, match="must not"):
        elbo_classify(score, x0, [0, 1], words, stages=[(8, 2), (4, 1)])


# ---------------------------------------------------------------------------------------------- interface
def test_word_ddpm_score_null_is_zero_vector_and_encode_range():
    from biasdiff.scores import ScoreModel

    score, words, _, _ = _planted(k=2)
    assert isinstance(score, ScoreModel)
    assert score.conditions[0] == NULL and score.condition_id(NULL) == 0
    assert not score.condition_vector(NULL).any()
    np.testing.assert_array_equal(score.condition_vector("woman"), [0, 1])
    img = np.array([[[[0, 255, 128]]]], dtype=np.uint8)
    x = score.encode(img)
    assert x.shape == (1, 3, 1, 1) and x.min() == -1 and x.max() == 1
    with pytest.raises(DataError, match="uint8"):
        score.encode(np.zeros((1, 4, 4), dtype=np.float32))


def test_word_ddpm_score_with_the_real_word_conditioned_unet():
    from biasdiff.model.unet import build_scheduler, build_unet

    unet = build_unet({"image_size": 8, "cond_dim": 4, "block_out_channels": [8, 16], "attention_resolutions": [4],
                       "attention_head_dim": 8, "norm_num_groups": 4})
    cond = {w: np.random.default_rng(i).normal(size=4).astype(np.float32) for i, w in enumerate(["man", "woman"])}
    score = WordDDPMScore(unet, build_scheduler().config, cond, batch_size=4)
    x0 = score.encode(np.random.default_rng(0).integers(0, 255, size=(3, 8, 8, 3), dtype=np.uint8))
    res = score_decomp(score, x0, [0, 1, 2], ["man", "woman"], timesteps=[10, 900], variants=["simplex"])
    assert res["simplex"].scores.shape == (3, 2, 1, 2) and score.evals == 3 * 3 * 2


def test_two_class_simplex_label_equals_nearest_output():
    """With K = 2, w_1 > 1/2 exactly when s0 is nearer s1 than s2: simplex and −L2 labels must agree."""
    rng = np.random.default_rng(3)
    base, attrs = rng.normal(size=(200, 5)), rng.normal(size=(2, 200, 5))
    np.testing.assert_array_equal(decompose(base, attrs, "simplex").argmax(1), decompose(base, attrs, "neg_l2").argmax(1))
