"""Sampling: guided DDPM/DDIM loops over a tiny word-conditioned ε-model (no training, no files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from torch import nn

from biasdiff.errors import ConfigError, DataError
from biasdiff.model.sampling import guided_eps, sample_images
from biasdiff.artifacts.conditioning import NULL_WORD, condition_vector
from biasdiff.sample.stage import check_model_dir, draw_word, image_seeds

COND_DIM = 8


class TinyEps(nn.Module):
    """Stand-in with WordConditionedUNet's call signature: (sample, timestep, cond) -> eps of sample's shape."""

    def __init__(self, cond_dim: int = COND_DIM, channels: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.cond = nn.Linear(cond_dim, channels)
        self.time = nn.Embedding(1000, channels)

    def forward(self, sample, timestep, cond):
        return self.conv(sample) + self.cond(cond)[:, :, None, None] + self.time(timestep)[:, :, None, None]


@pytest.fixture(scope="module")
def model():
    return TinyEps().eval()


@pytest.fixture(scope="module")
def scheduler():
    return DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")


@pytest.fixture(scope="module")
def cond():
    return np.random.default_rng(0).normal(size=COND_DIM).astype(np.float32)


@pytest.mark.parametrize("sampler,steps,eta", [("ddim", 10, 0.0), ("ddim", 10, 1.0), ("ddpm", None, 0.0)])
def test_sampler_shapes_range_and_determinism(model, scheduler, cond, sampler, steps, eta):
    """Per-image seeds: the same image whatever the batching, also for stochastic DDIM (eta 1, the default)."""
    kw = dict(image_size=8, sampler=sampler, steps=steps, guidance_scale=3.0, eta=eta, progress=False)
    a = sample_images(model, scheduler, cond, [1, 2, 3], batch_size=3, **kw)
    assert a.shape == (3, 8, 8, 3) and a.dtype == np.uint8
    assert a.min() >= 0 and a.max() <= 255 and a.std() > 0
    b = sample_images(model, scheduler, cond, [1, 2, 3], batch_size=2, **kw)  # other batching, same seeds
    np.testing.assert_array_equal(a, b)
    c = sample_images(model, scheduler, cond, [4, 2, 3], batch_size=3, **kw)
    assert not np.array_equal(a[0], c[0]) and np.array_equal(a[1:], c[1:])


def test_ddim_eta_changes_the_draw(model, scheduler, cond):
    kw = dict(image_size=8, sampler="ddim", steps=10, guidance_scale=3.0, progress=False)
    a = sample_images(model, scheduler, cond, [1, 2], eta=0.0, **kw)
    b = sample_images(model, scheduler, cond, [1, 2], eta=1.0, **kw)
    assert not np.array_equal(a, b)


def test_ddpm_uses_all_training_steps(model, scheduler, cond):
    calls = []

    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, sample, timestep, cond):
            calls.append(int(timestep[0]))
            return self.inner(sample, timestep, cond)

    sample_images(Counting(), scheduler, cond, [0], image_size=4, sampler="ddpm", progress=False)
    assert len(calls) == 1000 and calls[0] == 999 and calls[-1] == 0
    calls.clear()
    sample_images(Counting(), scheduler, cond, [0], image_size=4, sampler="ddim", steps=7, progress=False)
    assert len(calls) == 7


class Recording(nn.Module):
    """Wraps a model and records the condition batch of every forward call."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, []

    def forward(self, sample, timestep, c):
        self.seen.append(c.clone())
        return self.model(sample, timestep, c)


def test_guided_eps_evaluates_cond_and_uncond_in_one_batch(model, cond):
    recording = Recording(model)
    x = torch.randn(2, 3, 4, 4)
    t = torch.tensor([5, 5])
    c = torch.as_tensor(cond).expand(2, -1)
    eps = guided_eps(recording, x, t, c, 2.5)
    assert len(recording.seen) == 1 and recording.seen[0].shape == (4, COND_DIM)
    assert torch.all(recording.seen[0][2:] == 0)
    eps_c, eps_u = model(x, t, c), model(x, t, torch.zeros_like(c))
    torch.testing.assert_close(eps, eps_u + 2.5 * (eps_c - eps_u))


@pytest.mark.parametrize("scale", [0.0, 1.0])
def test_guided_eps_at_scale_zero_or_one_is_one_plain_forward_pass(model, cond, scale):
    recording = Recording(model)
    x = torch.randn(3, 3, 4, 4)
    t = torch.tensor([5, 40, 900])
    c = torch.as_tensor(cond).expand(3, -1)
    eps = guided_eps(recording, x, t, c, scale)
    assert len(recording.seen) == 1 and recording.seen[0].shape == (3, COND_DIM)  # B rows, not 2B
    expected_cond = c if scale == 1.0 else torch.zeros_like(c)
    assert torch.equal(recording.seen[0], expected_cond)
    torch.testing.assert_close(eps, model(x, t, expected_cond), rtol=0, atol=0)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_cfg_scale_zero_is_the_unconditional_model(model, scheduler, cond, sampler):
    kw = dict(image_size=8, sampler=sampler, steps=10 if sampler == "ddim" else None, progress=False)
    guided = sample_images(model, scheduler, cond, [5, 6], guidance_scale=0.0, **kw)
    null = sample_images(model, scheduler, np.zeros_like(cond), [5, 6], guidance_scale=1.0, **kw)
    np.testing.assert_array_equal(guided, null)
    conditional = sample_images(model, scheduler, cond, [5, 6], guidance_scale=3.0, **kw)
    assert not np.array_equal(guided, conditional)


def test_bad_sampler_and_steps_are_config_errors(model, scheduler, cond):
    with pytest.raises(ConfigError, match="ddpm"):
        sample_images(model, scheduler, cond, [0], image_size=4, sampler="euler", progress=False)
    with pytest.raises(ConfigError, match="between 1 and 1000"):
        sample_images(model, scheduler, cond, [0], image_size=4, sampler="ddim", steps=5000, progress=False)


def test_unknown_word_lists_valid_words(cond):
    table = {"man": cond, "woman": -cond}
    with pytest.raises(DataError, match=r"'nurse'.*\['man', 'woman', 'null'\]"):
        condition_vector(table, "nurse")
    assert np.all(condition_vector(table, NULL_WORD) == 0) and condition_vector(table, NULL_WORD).shape == (COND_DIM,)


def test_missing_model_dir_names_the_training_rule(tmp_path):
    with pytest.raises(DataError, match="train_ddpm"):
        check_model_dir(tmp_path / "models" / "nope", use_ema=True)
    (tmp_path / "m" / "unet").mkdir(parents=True)
    with pytest.raises(DataError, match="unet_ema.*train_ddpm"):
        check_model_dir(tmp_path / "m", use_ema=True)
    assert check_model_dir(tmp_path / "m", use_ema=False) == tmp_path / "m"


def test_draw_word_metadata_and_seeds(model, scheduler, cond):
    params = dict(n=5, sampler="ddim", steps=4, guidance_scale=3.0, eta=0.0, use_ema=True, seed=7, batch_size=2,
                  device="cpu", dtype="float32")
    images, meta = draw_word(model, scheduler, {"nurse": cond}, "nurse", params, image_size=8, progress=False)
    assert images.shape == (5, 8, 8, 3)
    assert list(meta["index"]) == list(range(5)) and (meta["word"] == "nurse").all()
    assert list(meta["seed"]) == image_seeds(7, "nurse", 5) and meta["seed"].nunique() == 5
    assert image_seeds(7, "nurse", 3) == image_seeds(7, "nurse", 5)[:3]  # growing n keeps existing images
    assert image_seeds(7, "nurse", 3) != image_seeds(7, "man", 3)
