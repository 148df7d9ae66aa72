"""Stage functions of the score audits on a tiny saved model directory and a tiny manifest (no workflow run):
artifacts, columns, exact evaluation counts in the accuracy table, determinism, score-bias / similarity / Lipschitz
properties on the planted model, and one-line errors on bad input."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch

from biasdiff.config import validate_schema
from biasdiff.errors import ConfigError, DataError
from biasdiff.manifest.build import write_manifest
from biasdiff.scores import NULL
from biasdiff.scoredecomp.bias import score_bias_weights, summarize_score_bias
from biasdiff.scoredecomp.lipschitz import lipschitz_ratios, summarize_lipschitz
from biasdiff.scoredecomp.similarity import condition_similarity, timestep_similarity
from biasdiff.scoredecomp.stage import (
    ACCURACY_COLUMNS,
    run_lipschitz_diagnostic,
    run_score_bias,
    run_score_similarity,
    run_scoredecomp_accuracy,
    run_scoredecomp_samples,
)
from test_scoredecomp import _planted

WORDS = ["man", "woman", "nurse", "philosopher", "person"]


def _params(**over):
    cfg = {"prompts": {"p": {"text": "x", "words": ["man"], "attributes": {"gender": "male", "occupation": "none"},
                             "count": 1, "shard_size": 1}},
           "scoredecomp": {"n_images": 6, "timesteps": [100, 500], "n_draws": 2, "batch_size": 32, "device": "cpu",
                           "variants": ["simplex", "cosine", "neg_l2", "pca_simplex"],
                           "elbo": {"budgets": [1, 3], "stages": []},
                           "score_bias": {"timesteps": [100, 700], "n_images": 4},
                           "similarity": {"timesteps": [100, 700], "n_images": 3},
                           "lipschitz": {"timesteps": [100, 700], "n_images": 3, "words": ["man", "woman", "nurse"]}}}
    validate_schema(cfg)
    params = cfg["scoredecomp"]
    params.update(over)
    return params


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """results/models/tiny/ (random WordConditionedUNet), conditioning.parquet and an 8-image manifest."""
    from biasdiff.model.unet import build_scheduler, build_unet

    root = tmp_path_factory.mktemp("sd")
    torch.manual_seed(0)
    unet = build_unet({"image_size": 8, "cond_dim": 6, "block_out_channels": [8, 16], "attention_resolutions": [4],
                       "attention_head_dim": 8, "norm_num_groups": 4})
    model_dir = root / "models" / "tiny"
    unet.save_pretrained(model_dir / "unet")
    unet.save_pretrained(model_dir / "unet_ema")
    build_scheduler().save_pretrained(model_dir / "scheduler")
    (model_dir / "train_config.json").write_text(json.dumps({"image_size": 8}))
    rng = np.random.default_rng(0)
    cond = pd.DataFrame({"word": WORDS, "vector": [rng.normal(size=6).astype(np.float32) for _ in WORDS]})
    cond.to_parquet(root / "conditioning.parquet")
    n = 10
    manifest = pd.DataFrame({"array_index": np.arange(n), "prompt": ["man", "woman"] * (n // 2),
                             "index": np.repeat(np.arange(n // 2), 2), "gender": ["male", "female"] * (n // 2),
                             "split": ["val"] * 8 + ["train"] * 2})
    write_manifest(manifest, rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8), root / "images.parquet",
                   root / "images.npy")
    samples = {}
    for word in ["man", "nurse", "null"]:
        samples[word] = str(root / f"{word}.npy")
        np.save(samples[word], rng.integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8))
    pd.DataFrame({"word": ["man", "nurse", "null"], "frac_female": [0.1, 0.6, 0.5], "ci_low": [0.0, 0.3, 0.2],
                  "ci_high": [0.3, 0.9, 0.8]}).to_parquet(root / "sample_bias.parquet")
    return {"root": root, "model": str(model_dir), "cond": str(root / "conditioning.parquet"),
            "manifest": str(root / "images.parquet"), "images": str(root / "images.npy"), "samples": samples,
            "sample_bias": str(root / "sample_bias.parquet")}


def _run_accuracy(ws, out, params):
    outputs = {"accuracy": out / "acc.parquet", "predictions": out / "pred.parquet", "figure": out / "acc.png"}
    return run_scoredecomp_accuracy(ws["model"], ws["cond"], ws["manifest"], ws["images"], outputs, params)


def test_classifier_audit_table_counts_and_determinism(workspace, tmp_path):
    params = _params(variants=["simplex", "pca_simplex"])
    table = _run_accuracy(workspace, tmp_path, params)
    assert list(table.columns) == ACCURACY_COLUMNS
    assert (tmp_path / "acc.png").stat().st_size > 0 and pd.read_parquet(tmp_path / "pred.parquet").shape[0] > 0
    sd = table[table["method"] == "scoredecomp"]
    # 3 conditions (null, man, woman): 1 t × 1 ε = 3 evaluations; 2 t × 2 ε = 12
    assert set(sd["evals_per_image"]) == {3.0, 6.0, 12.0}
    one = sd[(sd["timesteps"] == "100") & (sd["n_draws"] == 1)]
    assert len(one) == 2 and (one["evals_per_image"] == 3).all()
    elbo = table[table["method"] == "elbo"].set_index("timesteps")
    assert elbo.loc["even:1", "evals_per_image"] == 2 and elbo.loc["even:3", "evals_per_image"] == 6
    assert (table["n"] == 6).all() and table["accuracy"].between(0, 1).all()
    again = _run_accuracy(workspace, tmp_path / "again", params)
    pd.testing.assert_frame_equal(table, again)


def test_classifier_audit_pruned_elbo_and_bad_gender_words(workspace, tmp_path):
    params = _params(elbo={"budgets": [], "n_trials": 1, "stages": [[2, 1]]}, variants=["simplex"], timesteps=[300],
                     n_draws=1)
    table = _run_accuracy(workspace, tmp_path, params)
    assert table[table["method"] == "elbo"]["variant"].tolist() == ["pruned"]
    with pytest.raises(DataError, match="gender labels"):
        _run_accuracy(workspace, tmp_path / "bad", _params(gender_words={"man": "man", "woman": "woman"}))
    with pytest.raises(ConfigError, match="not known"):
        _run_accuracy(workspace, tmp_path / "bad2", _params(gender_words={"male": "man", "female": "lady"}))
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").iterdir())


def test_sample_proportions_beside_classifier(workspace, tmp_path):
    table = run_scoredecomp_samples(workspace["model"], workspace["cond"], workspace["samples"],
                                    workspace["sample_bias"], {"table": tmp_path / "s.parquet"}, _params(n_samples=4))
    assert table["word"].tolist() == ["man", "nurse", "null"] and (table["n"] == 4).all()
    assert table["female_weight"].between(0, 1).all() and (table["ci_low"] <= table["frac_female_argmax"]).all()
    assert table["classifier_frac_female"].tolist() == [0.1, 0.6, 0.5]
    with pytest.raises(DataError, match="sample_word"):
        run_scoredecomp_samples(workspace["model"], workspace["cond"], {"man": str(tmp_path / "none.npy")}, None,
                                {"table": tmp_path / "x.parquet"}, _params())


def test_score_bias_similarity_lipschitz_stage_artifacts(workspace, tmp_path):
    params = _params()
    bias = run_score_bias(workspace["model"], workspace["cond"], workspace["manifest"], workspace["images"],
                          {"table": tmp_path / "b.parquet", "figure": tmp_path / "b.png"}, params)
    assert set(bias["word"]) == {"nurse", "philosopher", "person"} and set(bias["t"]) == {100, 700}
    assert set(bias["images"]) == {"all", "female", "male"} and bias["female_weight"].between(0, 1).all()
    outs = {k: str(tmp_path / f"sim_{k}.{'parquet' if k in ('conditions', 'timesteps') else 'png'}")
            for k in ("conditions", "timesteps", "heatmaps", "curves", "timestep_heatmaps")}
    run_score_similarity(workspace["model"], workspace["cond"], workspace["manifest"], workspace["images"], outs, params)
    sim = pd.read_parquet(outs["conditions"])
    assert len(sim) == 2 * 6 * 6  # 2 timesteps × (null + 5 words)²
    lip = run_lipschitz_diagnostic(workspace["model"], workspace["cond"], workspace["manifest"], workspace["images"],
                                   {"ratios": tmp_path / "r.parquet", "summary": tmp_path / "s.parquet",
                                    "figure": tmp_path / "l.png"}, params)
    assert len(lip) == 3 * 2 and (lip["n"] == 3).all() and (lip["q05"] <= lip["max"]).all()


# ------------------------------------------------------------------------------ properties on the planted model
def test_score_bias_of_a_word_planted_between_the_gender_words():
    """Word 'nurse' planted as the output mixture 0.7 woman + 0.3 man: its female weight must come out 0.7."""
    score, words, x0, _ = _planted(k=2, n_per=3)
    score._cond = torch.cat([score._cond, torch.tensor([[0.3, 0.7]])])  # a third condition = the mixture
    score.conditions = (*score.conditions, "nurse")
    score._index["nurse"] = len(score.conditions) - 1
    w = score_bias_weights(score, x0, np.arange(6), ["nurse"], timesteps=[50, 500])
    np.testing.assert_allclose(w, 0.7, atol=1e-6)
    table = summarize_score_bias(w, ["nurse"], [50, 500], image_gender=["male"] * 3 + ["female"] * 3)
    assert set(table["images"]) == {"all", "male", "female"} and np.allclose(table["female_weight"], 0.7)
    assert score.evals == 6 * 3 * 2


def test_similarity_is_symmetric_with_unit_diagonal_and_counts():
    score, words, x0, _ = _planted(k=2, n_per=2)
    sim = condition_similarity(score, x0, np.arange(4), [NULL, *words], [10, 900])
    for t in (10, 900):
        m = sim[sim["t"] == t].pivot(index="condition_a", columns="condition_b", values="cosine")
        np.testing.assert_allclose(m.to_numpy(), m.to_numpy().T, atol=1e-12)
        np.testing.assert_allclose(np.diag(m.to_numpy()), 1.0, atol=1e-9)
    # at high noise every condition's ε̂ is nearly the noise itself: outputs agree more than at low noise
    hi = sim[(sim["t"] == 900) & (sim["condition_a"] == "man") & (sim["condition_b"] == "woman")]["cosine"].item()
    lo = sim[(sim["t"] == 10) & (sim["condition_a"] == "man") & (sim["condition_b"] == "woman")]["cosine"].item()
    assert hi > lo
    across = timestep_similarity(score, x0, np.arange(4), ["man"], [10, 500, 900])
    assert len(across) == 9 and np.allclose(across[across["t_a"] == across["t_b"]]["cosine"], 1.0)
    assert score.evals == 4 * 3 * 2 + 4 * 1 * 3


def test_lipschitz_ratio_matches_hand_computation():
    score, words, x0, _ = _planted(k=2, n_per=2)
    ratios = lipschitz_ratios(score, x0, np.arange(4), words, [200])
    assert len(ratios) == 4 and np.allclose(ratios["condition_distance"], np.sqrt(2))  # one-hot vectors
    # planted: ε̂_man − ε̂_woman = √ᾱ (μ_woman − μ_man) / √(1 − ᾱ), the same for every image
    abar = score.scheduler.alphas_cumprod[200].item()
    mus = score.model.mus
    expected = np.sqrt(abar / (1 - abar)) * torch.linalg.norm(mus[0] - mus[1]).item() / np.sqrt(2)
    np.testing.assert_allclose(ratios["ratio"], expected, rtol=1e-4)
    summary = summarize_lipschitz(ratios)
    assert summary.shape[0] == 1 and summary["n"].item() == 4
    with pytest.raises(ConfigError, match="at least 2 words"):
        lipschitz_ratios(score, x0, np.arange(4), ["man"], [200])


def test_schema_rejects_bad_scoredecomp_config():
    base = {"prompts": {"p": {"text": "x", "words": ["man"], "attributes": {"gender": "male", "occupation": "none"},
                              "count": 1, "shard_size": 1}}}
    for section, match in (({"timesteps": [1000]}, "timesteps"), ({"variants": ["dot"]}, "variants"),
                           ({"space": "x0"}, "space"), ({"elbo": {"budget": [1]}}, "budget")):
        cfg = copy.deepcopy(base)
        cfg["scoredecomp"] = section
        with pytest.raises(ConfigError, match=match):
            validate_schema(cfg)
