"""The experiment inside the smoke workflow (config.yaml's arms raw and swapped, one replicate): the shared stages
run once, rep-0 of the raw arm is the base model, the summary's numbers follow from the per-model audits, adding a
replicate schedules only its own jobs, a bad arm stops the run before any job, and the report's landing page shows
the answer."""

from __future__ import annotations

import collections
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from workflow_run import copy_repo, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

EXP = "results/experiment"
WORDS = ["man", "woman", "nurse", "person", "philosopher", "null"]


def test_two_arms_share_data_classifier_and_instrument(tmp_path):
    workdir = copy_repo(tmp_path / "wf")
    jobs = collections.Counter(rule for rule, _ in planned_jobs(workdir))
    for shared in ("build_manifest", "train_attribute_classifier", "readout_sdedit", "train_ddpm", "embed_words"):
        assert jobs[shared] == 1, (shared, jobs)
    assert jobs["experiment_train"] == 1  # swapped only: raw rep-0 is the base model
    assert jobs["experiment_embed"] == 1
    assert jobs["experiment_audit"] == 2 and jobs["experiment_summary"] == 1
    samples = {w for rule, w in planned_jobs(workdir) if rule == "experiment_sample"}
    # raw's main point is the sample stage's own samples; every other (arm, point) is sampled here
    assert samples == {"arm=raw, rep=0, point=w1-s4", "arm=raw, rep=0, point=w3-s2",
                       "arm=swapped, rep=0, point=w3-s4", "arm=swapped, rep=0, point=w1-s4",
                       "arm=swapped, rep=0, point=w3-s2"}


def test_summary_follows_from_the_per_model_audits(smoke_workdir):
    summary = pd.read_parquet(smoke_workdir / f"{EXP}/summary.parquet")
    required = {"arm", "point", "word", "p_female", "ci_low", "ci_high", "covers", "between_sd", "sampling_sd",
                "p_female_corrected", "diff_vs_reference", "diff_ci_low", "diff_ci_high", "diff_p_value",
                "gender_projection", "n_replicates"}
    assert required <= set(summary.columns)
    assert set(summary["arm"]) == {"raw", "swapped"} and set(summary["word"]) == set(WORDS)
    assert set(summary["point"]) == {"w3-s4", "w1-s4", "w3-s2"} and len(summary) == 2 * 3 * 6
    for arm in ("raw", "swapped"):
        audit = pd.read_parquet(smoke_workdir / f"{EXP}/{arm}/rep-0/audit.parquet")
        for _, row in audit.iterrows():
            got = summary[(summary.arm == arm) & (summary.point == row["point"]) & (summary.word == row["word"])].iloc[0]
            assert got["p_female"] == pytest.approx(row["n_female"] / row["n"])
            assert got["covers"].startswith("sampling only")
    # the main point's raw samples are the sample stage's: the audit read the same images the base audit read
    base = pd.read_parquet(smoke_workdir / "results/audit/sample_bias.parquet").set_index("word")
    raw_main = summary[(summary.arm == "raw") & summary["main"]].set_index("word")
    for word in WORDS:
        assert raw_main.loc[word, "p_female"] == pytest.approx(base.loc[word, "frac_female"])
    swapped = summary[(summary.arm == "swapped") & summary["main"]].set_index("word")
    for word in WORDS:
        assert swapped.loc[word, "diff_vs_reference"] == pytest.approx(
            swapped.loc[word, "p_female"] - raw_main.loc[word, "p_female"])
    # the embedding projections swap between the arms for the swapped words, and stay for the others
    assert swapped.loc["nurse", "gender_projection"] == pytest.approx(raw_main.loc["philosopher", "gender_projection"])
    assert swapped.loc["person", "gender_projection"] == pytest.approx(raw_main.loc["person", "gender_projection"])
    assert math.isnan(raw_main.loc["null", "gender_projection"])
    for name in ("arms.png", "dose_response.png", "guidance.png", "training_length.png", "summary.csv", "summary.md"):
        assert (smoke_workdir / EXP / name).stat().st_size > 0, name
    assert "| nurse | neutral | swapped |" in (smoke_workdir / EXP / "summary.md").read_text()
    # the within-model gap (config.yaml's experiment.contrast: nurse, philosopher) is read inside each model's audit
    contrast = pd.read_parquet(smoke_workdir / f"{EXP}/contrast.parquet")
    assert len(contrast) == 2 * 3
    for arm in ("raw", "swapped"):
        audit = pd.read_parquet(smoke_workdir / f"{EXP}/{arm}/rep-0/audit.parquet").set_index(["point", "word"])
        for _, row in contrast[contrast.arm == arm].iterrows():
            assert row["gap"] == pytest.approx(audit.loc[(row["point"], "nurse"), "frac_female"]
                                               - audit.loc[(row["point"], "philosopher"), "frac_female"])
    assert "## Within-model gap: P(female | nurse) − P(female | philosopher)" in (smoke_workdir / EXP / "summary.md").read_text()
    # the gap's dose-response across arms needs three arms: two give a reason, not a line
    fit = json.loads((smoke_workdir / EXP / "dose_response.json").read_text())["gap"]
    assert fit["n_arms"] == 2 and math.isnan(fit["slope"]) and fit["words"] == ["nurse", "philosopher"]
    assert "Gap dose–response: not estimable (2 arm(s)" in (smoke_workdir / EXP / "summary.md").read_text()


def test_snapshot_point_samples_the_intermediate_weights(smoke_workdir):
    meta = pd.read_parquet(smoke_workdir / f"{EXP}/swapped/rep-0/samples/w3-s2/nurse.parquet")
    final = pd.read_parquet(smoke_workdir / f"{EXP}/swapped/rep-0/samples/w1-s4/nurse.parquet")
    assert (meta["train_step"] == 2).all() and (final["train_step"] == -1).all()
    assert (final["guidance_scale"] == 1.0).all() and len(meta) == 4
    a = np.load(smoke_workdir / f"{EXP}/swapped/rep-0/samples/w3-s2/nurse.npy")
    b = np.load(smoke_workdir / f"{EXP}/swapped/rep-0/samples/w3-s4/nurse.npy")[:4]
    assert not np.array_equal(a, b)  # same seeds, other weights


def test_adding_a_replicate_schedules_only_its_own_jobs(copy_workdir):
    workdir = copy_workdir()
    smoke = workdir / "configs/smoke.yaml"
    cfg = yaml.safe_load(smoke.read_text())
    cfg["experiment"]["replicates"] = 2
    smoke.write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = planned_jobs(workdir)
    rules = collections.Counter(rule for rule, _ in jobs)
    assert set(rules) == {"experiment_train", "experiment_sample", "experiment_audit", "experiment_summary", "all"}
    assert all("rep=1" in w for rule, w in jobs if rule not in ("experiment_summary", "all")), jobs
    assert rules["experiment_train"] == 2 and rules["experiment_audit"] == 2
    assert rules["experiment_sample"] == 2 * 3  # every point of both new models, the raw one's main point included


def test_damaged_experiment_weights_stop_the_run_before_any_job_and_name_the_model(copy_workdir):
    workdir = copy_workdir()
    model = f"{EXP}/swapped/rep-0/model"
    ema = workdir / model / "unet_ema/diffusion_pytorch_model.safetensors"
    intact = ema.read_bytes()
    ema.write_bytes(intact[:2048])
    out = snakemake(workdir, "--dry-run", "--cores", "1")
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "Nothing to be done" not in text
    assert "experiment arm swapped replicate 0: model weights" in text
    assert "unet_ema/diffusion_pytorch_model.safetensors do not match" in text
    assert f"snakemake --forcerun {model}/train_config.json" in text
    # the command it names retrains that model alone and what reads it
    jobs = planned_jobs(workdir, "--forcerun", f"{model}/train_config.json")
    assert [w for rule, w in jobs if rule == "experiment_train"] == ["arm=swapped, rep=0"]
    assert not any(rule == "train_ddpm" for rule, _ in jobs)
    # a snapshot a training-length point samples (w3-s2: step 2) is checked too
    ema.write_bytes(intact)
    (workdir / model / "snapshots/step-0000002/unet_ema/diffusion_pytorch_model.safetensors").unlink()
    out = snakemake(workdir, "--dry-run", "--cores", "1")
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "experiment arm swapped replicate 0: model weights" in text
    assert "step-0000002/unet_ema/diffusion_pytorch_model.safetensors are missing" in text


def test_a_bad_arm_stops_the_run_before_any_job_and_names_it(tmp_path):
    workdir = copy_repo(tmp_path / "wf")
    overlay = workdir / "configs/bad.yaml"
    overlay.write_text("experiment:\n  arms:\n    bigger: {image_size: 64}\n")
    out = snakemake(workdir, "--cores", "1", "--configfile", "configs/smoke.yaml", "configs/bad.yaml", smoke=False)
    assert out.returncode != 0
    assert "experiment.arms.bigger.image_size" in out.stderr
    assert not (workdir / "results").exists()


def test_report_landing_page_shows_the_answer_first(copy_workdir, tmp_path):
    workdir = copy_workdir()
    out = snakemake(workdir, "--report", str(tmp_path / "report.html"), timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    html = (tmp_path / "report.html").read_text()
    answer, stages = html.find("The answer: P(female | word) per embedding arm"), html.find("Stages (one category each)")
    assert 0 <= answer < stages
    assert "swapped \\u2212 raw" in html or "swapped − raw" in html  # the report embeds the page JSON-escaped
    assert html.count('src=\\"data:image/png;base64,') >= 2  # the bars and the dose-response figure, inline


def test_null_samples_do_not_depend_on_the_guidance_scale(smoke_workdir):
    """The null condition is the unconditional model at every w, drawn from the same per-image seeds: the guidance
    curve's null images are the first images of the sample stage's own null samples, pixel for pixel."""
    main = np.load(smoke_workdir / "results/samples/default/null.npy")
    curve = np.load(smoke_workdir / f"{EXP}/raw/rep-0/samples/w1-s4/null.npy")
    assert np.array_equal(curve, main[: len(curve)])


def test_retraining_an_arm_gives_byte_identical_artifacts(copy_workdir):
    """Same config -> the same bytes: the swapped arm retrained from scratch (and everything after it redone)
    reproduces its weights, snapshot, samples, audit and the summary."""
    workdir = copy_workdir()
    rep = workdir / f"{EXP}/swapped/rep-0"
    files = [rep / "model/unet_ema/diffusion_pytorch_model.safetensors",
             rep / "model/snapshots/step-0000002/unet_ema/diffusion_pytorch_model.safetensors",
             rep / "samples/w3-s4/nurse.npy", rep / "samples/w3-s2/nurse.npy", rep / "audit.parquet",
             workdir / f"{EXP}/summary.parquet"]
    before = {f: f.read_bytes() for f in files}
    out = snakemake(workdir, "--cores", "2", "--forcerun", "experiment_train", timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "experiment_train" in out.stderr
    for f in files:
        assert f.read_bytes() == before[f], f
