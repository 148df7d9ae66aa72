"""DiffusersScore on a tiny random StableDiffusionPipeline built from configs (no download): ε and v targets,
VAE latents, save/reload by path, and exact evaluation counts through ScoreDecomp and the ELBO classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, EulerDiscreteScheduler

from biasdiff.errors import DataError
from biasdiff.scores import DiffusersScore, elbo_classify, score_decomp
from tiny_models import tiny_sd_pipeline

PROMPTS = ["a photo of a man", "a photo of a woman", "a photo of a nurse"]


def _pipeline(tmp_path, prediction_type: str, scheduler_cls=DDPMScheduler):
    """A tiny SD pipeline (16 px images, 8 px latents, 16-wide text encoder)."""
    return tiny_sd_pipeline(prediction_type, scheduler_cls=scheduler_cls, sample_size=16, text_width=16)


IMAGES = np.random.default_rng(0).integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_targets_follow_prediction_type(tmp_path, prediction_type):
    from biasdiff.scores import ScoreModel

    score = DiffusersScore(_pipeline(tmp_path, prediction_type), PROMPTS, batch_size=3)
    assert isinstance(score, ScoreModel) and score.prediction_type == prediction_type
    x0 = score.encode(IMAGES)
    assert x0.shape == (4, 4, 8, 8)
    noise = torch.randn_like(x0)
    t = torch.tensor([10, 250, 600, 990])
    x_t = score.add_noise(x0, noise, t)
    abar = score.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    np.testing.assert_allclose(x_t, abar.sqrt() * x0 + (1 - abar).sqrt() * noise, rtol=1e-5, atol=1e-5)
    target = score.target(x0, noise, t)
    if prediction_type == "epsilon":
        assert torch.equal(target, noise)
    else:  # v = α ε − σ x0
        np.testing.assert_allclose(target, abar.sqrt() * noise - (1 - abar).sqrt() * x0, rtol=1e-5, atol=1e-5)
    # converting the true target back to ε gives the true noise, whatever the parameterisation
    np.testing.assert_allclose(score.to_eps(target, x_t, t), noise, rtol=1e-4, atol=1e-4)


def test_latents_are_scaled_vae_means(tmp_path):
    pipe = _pipeline(tmp_path, "epsilon")
    pipe.vae.config.scaling_factor  # noqa: B018 - present in the config
    score = DiffusersScore(pipe, PROMPTS, latent="mean")
    x = torch.from_numpy(IMAGES).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        expected = pipe.vae.encode(x).latent_dist.mean * pipe.vae.config.scaling_factor
    np.testing.assert_allclose(score.encode(IMAGES), expected, rtol=1e-5, atol=1e-5)
    sampled = DiffusersScore(pipe, PROMPTS, latent="sample")
    z1 = sampled.encode(IMAGES, generator=torch.Generator().manual_seed(1))
    z2 = sampled.encode(IMAGES, generator=torch.Generator().manual_seed(1))
    assert torch.equal(z1, z2) and not torch.allclose(z1, expected)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_counts_exact_through_both_methods(tmp_path, prediction_type):
    score = DiffusersScore(_pipeline(tmp_path, prediction_type), PROMPTS, batch_size=12)
    x0 = score.encode(IMAGES)
    res = score_decomp(score, x0, np.arange(4), PROMPTS[:2], base="", timesteps=[100, 500], n_draws=1,
                       variants=["simplex", "cosine"])
    assert score.evals == 4 * 3 * 2 and res["simplex"].evals_per_image == 6
    elbo = elbo_classify(score, x0, np.arange(4), PROMPTS, stages=[(3, 1)])
    assert (elbo.evals == 9).all() and score.evals == 24 + 36
    # the ELBO error is against the true target: a perfect predictor would score 0
    assert np.isfinite(elbo.errors).all()


def test_simplex_weights_invariant_to_eps_or_v_output(tmp_path):
    """v̂ is an affine function of ε̂ with the same offset for every condition, so simplex weights (Σw = 1) agree."""
    score = DiffusersScore(_pipeline(tmp_path, "v_prediction"), PROMPTS, batch_size=8)
    x0 = score.encode(IMAGES)
    raw = score_decomp(score, x0, np.arange(4), PROMPTS, timesteps=[300], variants=["simplex"], space="raw")
    eps = score_decomp(score, x0, np.arange(4), PROMPTS, timesteps=[300], variants=["simplex"], space="eps")
    np.testing.assert_allclose(raw["simplex"].scores, eps["simplex"].scores, atol=1e-4)


def test_from_pretrained_local_directory_and_other_scheduler(tmp_path):
    pipe = _pipeline(tmp_path, "v_prediction", scheduler_cls=EulerDiscreteScheduler)
    pipe.save_pretrained(tmp_path / "pipe")
    score = DiffusersScore.from_pretrained(str(tmp_path / "pipe"), PROMPTS[:2], local_files_only=True)
    # whatever scheduler the pipeline ships, the noise schedule is the DDPM one with the same betas and target
    assert isinstance(score.scheduler, DDPMScheduler) and score.prediction_type == "v_prediction"
    assert score.condition_vector(PROMPTS[0]).shape == (77 * 16,)
    assert not np.allclose(score.condition_vector(PROMPTS[0]), score.condition_vector(PROMPTS[1]))
    with pytest.raises(DataError, match="cannot load diffusers pipeline"):
        DiffusersScore.from_pretrained(str(tmp_path / "missing"), PROMPTS, local_files_only=True)
