"""The instrument's readout per context: degradation ladders, SDEdit, detectability curves and instrument agreement,
on fixtures whose answer is known by construction (no trained model needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import DDPMScheduler
from torch import nn

from biasdiff.audit.degrade import blur_noise, diffusion_x0, sdedit
from biasdiff.audit.readout import detectability_table, sdedit_table
from biasdiff.config import section_defaults
from biasdiff.errors import ConfigError

SIZE, COND = 16, 4


@pytest.fixture(scope="module")
def scheduler():
    return DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")


class OracleEps(nn.Module):
    """Knows the clean images: returns the exact noise that takes them to x_t, so x̂0 must be the input itself."""

    def __init__(self, x0: torch.Tensor, scheduler):
        super().__init__()
        self.x0, self.ab = x0, scheduler.alphas_cumprod
        self.anchor = nn.Parameter(torch.zeros(1))  # a parameter, as the sampler moves models by theirs

    def forward(self, sample, timestep, cond):
        ab = self.ab[timestep].float().view(-1, 1, 1, 1)
        x0 = self.x0.repeat(sample.shape[0] // self.x0.shape[0], 1, 1, 1)
        return (sample - ab.sqrt() * x0) / (1 - ab).sqrt()


class TinyEps(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.cond = nn.Linear(COND, 3)

    def forward(self, sample, timestep, cond):
        return 0.1 * self.conv(sample) + self.cond(cond)[:, :, None, None]


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, SIZE, SIZE, 3), dtype=np.uint8)


def test_blur_noise_is_identity_at_zero_seeded_and_grows_with_the_level():
    imgs = _images(4)
    assert np.array_equal(blur_noise(imgs, 0.0, range(4), 1.5, 0.5), imgs)
    a = blur_noise(imgs, 0.5, [7, 8, 9, 10], 1.5, 0.5)
    assert np.array_equal(a, blur_noise(imgs, 0.5, [7, 8, 9, 10], 1.5, 0.5))
    assert np.array_equal(a[1:], blur_noise(imgs[1:], 0.5, [8, 9, 10], 1.5, 0.5))  # per-image seeds
    change = [np.abs(blur_noise(imgs, lv, range(4), 1.5, 0.5).astype(int) - imgs).mean() for lv in (0.25, 0.5, 1.0)]
    assert change[0] < change[1] < change[2]
    with pytest.raises(ValueError, match="level"):
        blur_noise(imgs, 1.5, range(4), 1.5, 0.5)


def test_one_step_x0_of_an_oracle_model_is_the_input(scheduler):
    """x̂0 = (x_t − √(1−ᾱ) ε̂)/√ᾱ with the true ε gives back x0 (up to uint8 rounding), at every t."""
    imgs = _images(3)
    x0 = torch.as_tensor(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1
    model = OracleEps(x0, scheduler)
    for t in (0, 100, 600):
        out = diffusion_x0(model, scheduler, imgs, t, np.zeros(COND, np.float32), [1, 2, 3])
        assert np.abs(out.astype(int) - imgs.astype(int)).max() <= 1, t


def test_sdedit_is_seeded_batch_invariant_and_keeps_the_input_at_low_strength(scheduler):
    imgs = _images(4, seed=3)
    cond = np.ones(COND, np.float32)
    model = TinyEps().eval()
    kw = dict(sampler="ddim", steps=20, eta=1.0, guidance_scale=3.0)
    low = sdedit(model, scheduler, imgs, 0.1, cond, [5, 6, 7, 8], batch_size=4, **kw)
    assert np.array_equal(low, sdedit(model, scheduler, imgs, 0.1, cond, [5, 6, 7, 8], batch_size=3, **kw))
    high = sdedit(model, scheduler, imgs, 1.0, cond, [5, 6, 7, 8], **kw)
    diff = lambda out: np.abs(out.astype(int) - imgs.astype(int)).mean()  # noqa: E731
    assert diff(low) < diff(high) and diff(low) < 40  # grey levels; the untrained model redraws everything at 1.0
    with pytest.raises(ValueError, match="strength"):
        sdedit(model, scheduler, imgs, 0.0, cond, [1, 2, 3, 4], **kw)


class CueReader:
    """An instrument that reads 'female' where the centre patch is brighter than the border: the gender cue of the
    fixture below. Shaped like AttributeClassifier for what the readout calls."""

    labels = {"gender": ["female", "male"]}

    def predict(self, images, batch_size=256, device="cpu"):
        x = np.asarray(images, dtype=np.float32).mean(-1)
        centre = x[:, 6:10, 6:10].mean((1, 2))
        border = np.concatenate([x[:, :3].reshape(len(x), -1), x[:, -3:].reshape(len(x), -1)], 1).mean(1)
        return {"gender": np.where(centre > border + 8, "female", "male").astype(object)}


def _cue_cells(contrast: dict[str, float], n: int = 30) -> pd.DataFrame:
    """Grey images; a female image has a centre patch `contrast[context]` grey levels brighter (the cue)."""
    rows = []
    for context, c in contrast.items():
        for gender in ("female", "male"):
            for i in range(n):
                img = np.full((SIZE, SIZE, 3), 100, np.uint8)
                if gender == "female":
                    img[5:11, 5:11] += np.uint8(c)
                rows.append({"context": context, "gender": gender, "key": f"{context}/{gender}/{i}", "pixels": img})
    return pd.DataFrame(rows)


def _settings(**over):
    s = section_defaults("audit")["readout"]
    s["blur_noise"] = {"levels": [0.0, 0.5, 1.0], "max_blur": 2.0, "max_noise": 0.3}
    s.update(over)
    return s


def test_detectability_curves_differ_only_where_the_cue_differs():
    """A cue planted strongly in one context and faintly in another: the faint context's female curve falls first
    as blur and noise grow; with equal cues the curves agree. Male cells (no cue to lose) stay right."""
    table = detectability_table(_cue_cells({"hospital": 120, "library": 14}), CueReader(), _settings())
    acc = table.set_index(["context", "gender", "level"])["accuracy"]
    assert acc[("hospital", "female", 0.0)] == acc[("library", "female", 0.0)] == 1.0  # clean: both perfect
    assert acc[("library", "female", 1.0)] < acc[("hospital", "female", 1.0)] - 0.3
    assert list(table.columns[:4]) == ["context", "gender", "kind", "level"] and set(table["kind"]) == {"blur_noise"}
    fair = detectability_table(_cue_cells({"hospital": 120, "library": 120}), CueReader(), _settings())
    f = fair.set_index(["context", "gender", "level"])["accuracy"]
    for level in (0.0, 0.5, 1.0):
        assert abs(f[("hospital", "female", level)] - f[("library", "female", level)]) <= 0.15


def test_sdedit_table_counts_rates_per_context_and_strength(scheduler):
    """With an oracle model SDEdit gives back the input, so the rates are the instrument's on clean images: the cue
    reader finds every woman where the cue is strong and none where it is below its threshold."""
    cells = _cue_cells({"hospital": 120, "library": 5}, n=6)
    x0 = torch.as_tensor(np.stack(cells["pixels"].to_list())).permute(0, 3, 1, 2).float() / 127.5 - 1
    settings = _settings(sdedit={"strengths": [0.2], "correction_strength": 0.2}, batch_size=64)
    sampling = {"sampler": "ddim", "steps": 10, "eta": 0.0, "guidance_scale": 1.0}
    vectors = {"hospital": np.zeros(COND, np.float32), "library": np.zeros(COND, np.float32)}
    tables = []
    for context, idx in cells.groupby("context", sort=False).groups.items():  # one oracle per context's images
        idx = np.asarray(idx)
        part = cells.loc[idx].reset_index(drop=True)
        table, edited = sdedit_table(part, CueReader(), OracleEps(x0[idx], scheduler), scheduler, vectors,
                                     {"hospital": "nurse", "library": "philosopher"}, settings, sampling)
        assert np.abs(edited[0.2].astype(int) - np.stack(part["pixels"].to_list()).astype(int)).max() <= 1
        tables.append(table)
    table = pd.concat(tables).set_index(["context", "rate_name"])
    assert table.loc[("hospital", "sensitivity"), "rate"] == 1.0 and table.loc[("library", "sensitivity"), "rate"] == 0
    assert (table.xs("specificity", level="rate_name")["rate"] == 1.0).all()
    assert table.loc[("library", "sensitivity"), "word"] == "philosopher" and (table["n"] == 6).all()


def _config(**readout):
    import yaml
    from pathlib import Path

    from biasdiff.config import validate_config

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    cfg["audit"]["readout"].update(readout)
    return validate_config(cfg)


def test_readout_config_errors_name_the_key_and_the_valid_choices():
    with pytest.raises(ConfigError, match=r"correction_strength: 0.4 is not one of audit.readout.sdedit.strengths"):
        _config(sdedit={"strengths": [0.1, 0.3], "correction_strength": 0.4})
    with pytest.raises(ConfigError, match=r"no word for occupation 'philosopher'"):
        _config(context_words={"none": "person", "nurse": "nurse"})
    with pytest.raises(ConfigError, match=r"context_words.nurse: 'doctor' is not a word the model is trained with"):
        _config(context_words={"none": "person", "nurse": "doctor", "philosopher": "philosopher"})
    assert _config()["audit"]["readout"]["sdedit"]["correction_strength"] == 0.3


def test_instrument_agreement_kappa_per_word_against_the_hand_count(tmp_path):
    from biasdiff.scoredecomp.stage import instrument_agreement

    cls = [1, 1, 1, 1, 0, 0, 0, 0, 1, 0]
    elbo = [1, 1, 1, 0, 0, 0, 0, 1, 1, 1]  # vs cls: po 0.7, pe 0.5 -> κ 0.4 (by hand)
    pd.DataFrame({"word": "nurse", "index": range(10), "classifier_female": np.array(cls, bool)}
                 ).to_parquet(tmp_path / "cls.parquet")
    labels = pd.DataFrame({"word": "nurse", "index": range(10), "elbo_female": np.array(elbo, bool),
                           "scoredecomp_female": np.array(cls, bool)})
    row = instrument_agreement(labels, tmp_path / "cls.parquet").iloc[0]
    assert row["kappa_classifier_elbo"] == pytest.approx(0.4) and row["agree_classifier_elbo"] == pytest.approx(0.7)
    assert row["kappa_classifier_scoredecomp"] == pytest.approx(1.0)
    assert row["p_female_classifier"] == 0.5 and row["p_female_elbo"] == 0.6 and row["n"] == 10
