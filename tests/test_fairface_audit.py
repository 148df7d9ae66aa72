"""FairFace audit: ScoreDecomp/ELBO on an official-layout fixture with a planted score model whose answer is known;
accuracy tables with Wilson CIs and unlabelled rows; config errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import DDPMScheduler
from PIL import Image

from biasdiff.errors import ConfigError
from biasdiff.fairface.audit import TaskSpec, accuracy_figure, run_audit, summarise, task_specs
from biasdiff.fairface.load import load_fairface
from biasdiff.fairface.metrics import accuracy_table
from biasdiff.stats import wilson_interval
from biasdiff.scores import WordDDPMScore


class Planted(torch.nn.Module):
    """Exact ε̂ for two point masses (one per gender word, one-hot conditions); zero condition = posterior mixture."""

    def __init__(self, mus, scheduler):
        super().__init__()
        self.register_buffer("mus", mus)
        self.register_buffer("abar", scheduler.alphas_cumprod.float())

    def forward(self, sample, timestep, cond):
        a = self.abar[timestep.long()].view(-1, 1, 1, 1)
        diff = sample[:, None] - a.sqrt()[:, None] * self.mus[None]
        eps_k = diff / (1 - a).sqrt()[:, None]
        post = torch.softmax(-0.5 * (diff**2).flatten(2).sum(2) / (1 - a.view(-1, 1)), dim=1)
        w = torch.where((cond.abs().sum(1) == 0)[:, None], post, cond[:, :2])
        return (w[:, :, None, None, None] * eps_k).sum(1)


def _fixture(tmp_path, n=12, size=8):
    rng = np.random.default_rng(0)
    mus = rng.uniform(-0.8, 0.8, size=(2, size, size, 3))  # in [-1, 1] pixel units; 0 = Male, 1 = Female
    (tmp_path / "val").mkdir()
    rows = []
    for i in range(n):
        g = i % 2
        pix = ((mus[g] + rng.normal(scale=0.03, size=mus[g].shape) + 1) * 127.5).clip(0, 255).astype(np.uint8)
        Image.fromarray(pix).save(tmp_path / "val" / f"{i + 1}.png")
        rows.append({"file": f"val/{i + 1}.png", "age": None, "gender": ["Male", "Female"][g],
                     "race": "White" if i < 4 else None, "service_test": False})
    pd.DataFrame(rows).to_csv(tmp_path / "fairface_label_val.csv", index=False)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    mus_t = torch.from_numpy(mus).permute(0, 3, 1, 2).float()
    cond = {"man": np.array([1, 0], np.float32), "woman": np.array([0, 1], np.float32), "person": np.zeros(2, np.float32)}
    return WordDDPMScore(Planted(mus_t, sched), sched.config, cond, batch_size=16)


def test_audit_recovers_known_gender_on_official_layout(tmp_path):
    model = _fixture(tmp_path)
    ds = load_fairface(tmp_path, split="val")
    tasks = task_specs({"gender": {"Male": "man", "Female": "woman"}, "race": None})
    pred = run_audit(ds, model, tasks, "person", num_data=10, seed=0, image_size=8, timesteps=[50, 200], n_draws=1,
                     elbo={"enabled": True, "n_timesteps": 4, "n_trials": 1}, batch=4)
    assert set(pred["method"]) == {"scoredecomp", "elbo"} and len(pred) == 20
    sd = pred[pred["method"] == "scoredecomp"]
    assert (sd["true"] == sd["pred"]).all()
    w = np.stack(sd["weights"].to_numpy())
    assert np.allclose(w.sum(1), 1, atol=1e-6) and (w.max(1) > 0.9).all()  # simplex weights, near-pure images
    assert (sd["evals"] == 3 * 2).all()  # (K + 1) conditions x 2 timesteps x 1 draw
    el = pred[pred["method"] == "elbo"]
    assert (el["true"] == el["pred"]).all()
    accuracy, confusion = summarise(pred, tasks)
    overall = accuracy[(accuracy["group_by"] == "overall") & (accuracy["method"] == "scoredecomp")].iloc[0]
    assert overall["n"] == 10 and overall["accuracy"] == 1.0 and overall["ci_low"] < 1.0
    assert confusion[(confusion["method"] == "elbo") & (confusion["true"] == confusion["pred"])]["count"].sum() == 10
    # Same config -> same sample and same predictions.
    again = run_audit(ds, model, tasks, "person", num_data=10, seed=0, image_size=8, timesteps=[50, 200], n_draws=1,
                      elbo=None, batch=3)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), sd.reset_index(drop=True), check_exact=False, atol=1e-6)
    import matplotlib.pyplot as plt

    plt.close(accuracy_figure(accuracy))


def test_accuracy_table_skips_unlabelled_and_reports_empty_groups():
    pred = pd.DataFrame({"task": "race", "method": "scoredecomp", "true": [None, None, "White", "Black"],
                         "pred": ["White", "Black", "White", "White"], "gender": ["Male", "Female", "Male", "Female"],
                         "race": [None, None, "White", "Black"]})
    acc = accuracy_table(pred)
    overall = acc[acc["group_by"] == "overall"].iloc[0]
    assert overall["n"] == 2 and overall["correct"] == 1 and overall["n_unlabelled"] == 2
    unknown = acc[(acc["group_by"] == "race") & (acc["group"] == "<unknown>")].iloc[0]
    assert unknown["n"] == 0 and np.isnan(unknown["accuracy"]) and np.isnan(unknown["ci_low"])
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)


def test_task_specs_validate_class_names():
    specs = task_specs({"gender": {"Female": "woman", "Male": "man"}, "race": None})
    assert specs == [TaskSpec("gender", ("Male", "Female"), ("man", "woman"))]
    with pytest.raises(ConfigError, match="Martian"):
        task_specs({"gender": {"Male": "man", "Female": "woman"}, "race": {"Martian": "x", "White": "y"}})
    with pytest.raises(ConfigError, match="at least 2"):
        task_specs({"gender": {"Male": "man"}})


def test_official_and_hf_layouts_give_the_same_noise_and_predictions(tmp_path):
    """The same images in FairFace's two layouts ("train/4.jpg" in the CSV, Parquet row 4 = "train/4") get the same
    noise seeds, hence identical ScoreDecomp weights and ELBO errors (the ELBO's Monte Carlo noise shows any change)."""
    from paper_standins import fairface_rows, write_fairface_hf, write_fairface_official

    from biasdiff.fairface.audit import noise_seed
    from biasdiff.fairface.load import image_id

    assert image_id("train/4.jpg") == image_id("train/4") == "train/4"
    assert noise_seed(0, "train/4.jpg") == noise_seed(0, "train/4") != noise_seed(0, "train/5")
    rows = {"train": fairface_rows(10, "train", size=16)}
    official = load_fairface(write_fairface_official(tmp_path / "official", rows), split="train")
    hf = load_fairface(write_fairface_hf(tmp_path / "hf", rows, n_files=3), split="train")
    assert (official.layout, hf.layout) == ("official", "hf_parquet")
    assert official.labels["image_id"].tolist() == hf.labels["image_id"].tolist() == [f"train/{i}" for i in range(1, 11)]

    model = _fixture(tmp_path)
    tasks = task_specs({"gender": {"Male": "man", "Female": "woman"}, "race": None})
    kwargs = dict(num_data=6, seed=0, image_size=8, timesteps=[50, 200], n_draws=1,
                  elbo={"enabled": True, "n_timesteps": 4, "n_trials": 1}, batch=4)
    a = run_audit(official, model, tasks, "person", **kwargs)
    b = run_audit(hf, model, tasks, "person", **kwargs)
    assert a["file"].str.endswith(".jpg").all() and not b["file"].str.endswith(".jpg").any()
    assert a["image_id"].tolist() == b["image_id"].tolist()
    for col in ("task", "method", "true", "pred", "evals"):
        assert a[col].tolist() == b[col].tolist(), col
    assert np.array_equal(np.stack(a["weights"].to_numpy()), np.stack(b["weights"].to_numpy()))
