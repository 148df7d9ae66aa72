"""Sample + audit stages inside the smoke workflow: artifacts, and precise invalidation (a CFG change reruns
sampling and the audit, not training; the floor reruns only the audit; classifier settings rerun the classifier)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml

from workflow_run import planned_jobs, preset_config

pytestmark = pytest.mark.workflow

AUDIT = "results/audit/sample_bias.parquet"


def _words(workdir):
    from biasdiff.sample.words import sample_words

    return sample_words(preset_config(workdir)["prompts"])


def _edit_section(workdir, section: str, key: str, old: str, new: str) -> None:
    """Replace `key: old` by `key: new` inside the top-level `section:` block of the copy's smoke config; a key the
    overlay leaves to config.yaml (whose value there must be `old`) is added at the top of the block instead."""
    path = workdir / "configs/smoke.yaml"
    text = path.read_text()
    start = text.index(f"\n{section}:\n")
    end_match = re.compile(r"\n[a-z_]+:", re.M).search(text, start + len(section) + 3)
    end = end_match.start() if end_match else len(text)
    block = text[start:end]
    if f"{key}: {old}" not in block:
        assert f"{key}:" not in block, block
        assert preset_config(workdir)[section][key] == yaml.safe_load(old), (section, key)
        block = block.replace(f"\n{section}:\n", f"\n{section}:\n  {key}: {old}\n", 1)
    path.write_text(text[:start] + block.replace(f"{key}: {old}", f"{key}: {new}", 1) + text[end:])


def test_smoke_run_samples_every_word_and_audits_them(smoke_workdir):
    words = _words(smoke_workdir)
    assert words[-1] == "null" and "nurse" in words
    for word in words:
        images = np.load(smoke_workdir / f"results/samples/default/{word}.npy")
        assert images.shape == (8, 16, 16, 3) and images.dtype == np.uint8
        assert len(pd.read_parquet(smoke_workdir / f"results/samples/default/{word}.parquet")) == 8
        assert (smoke_workdir / f"results/samples/default/grid_{word}.png").stat().st_size > 0
    audit = pd.read_parquet(smoke_workdir / AUDIT)
    assert list(audit["word"]) == words and (audit["n"] == 8).all()
    assert ((audit["ci_low"] <= audit["frac_female"]) & (audit["frac_female"] <= audit["ci_high"])).all()
    train = audit.set_index("word")["train_frac_female"]
    assert train["man"] == 0 and train["woman"] == 1 and 0 < train["nurse"] < 1
    assert (smoke_workdir / "results/audit/classifier_metrics.json").is_file()
    assert "| nurse |" in (smoke_workdir / "results/audit/sample_bias.md").read_text()


def test_cfg_scale_reruns_sampling_and_audit_not_training(copy_workdir):
    """Sampling and the audit rerun, and the SDEdit readout (it redraws held-out images as the samples are drawn, so
    its rates follow the guidance scale); training and the classifier do not."""
    workdir = copy_workdir()
    _edit_section(workdir, "sample", "guidance_scale", "3.0", "2.0")
    jobs = planned_jobs(workdir, AUDIT)
    assert sorted({rule for rule, _ in jobs}) == ["audit_samples", "readout_sdedit", "sample_word"]
    assert sum(rule == "sample_word" for rule, _ in jobs) == len(_words(workdir))


def test_floor_reruns_only_the_audit(copy_workdir):
    workdir = copy_workdir()
    _edit_section(workdir, "audit", "gender_accuracy_floor", "0.0", "0.01")
    assert planned_jobs(workdir, AUDIT) == [("audit_samples", "")]


def test_classifier_settings_rerun_classifier_and_audit_only(copy_workdir):
    """The classifier, the audit, and the SDEdit rates the audit corrects with (measured with that classifier)."""
    workdir = copy_workdir()
    _edit_section(workdir, "audit", "epochs", "2", "3")
    assert planned_jobs(workdir, AUDIT) == [("audit_samples", ""), ("readout_sdedit", ""),
                                            ("train_attribute_classifier", "")]
