"""The embed_words rule on configs/smoke.yaml in a temporary directory: its params are exactly the embedding
section and the conditioning words, so changing the projection seed reruns it and changing other stages' config
does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workflow_run import preset_config

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow


def _snakemake(workdir: Path, config: dict, *args: str) -> str:
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(cfg), "--cores", "1", *args,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("embed_wf")
    config = preset_config(ROOT)  # config.yaml + configs/smoke.yaml, as the workflow merges them
    _snakemake(workdir, config, "embed_words")
    return workdir, config


def test_rule_builds_the_artifacts(built):
    workdir, _ = built
    for name in (
        "conditioning.parquet",
        "vectors.parquet",
        "bias.parquet",
        "weat.parquet",
        "distortion.json",
        "bias.png",
    ):
        assert (workdir / "results" / "embeddings" / name).is_file(), name
    assert "loaded glove-wheel" in (workdir / "results" / "logs" / "embed_words.log").read_text()


def test_changing_the_projection_seed_reruns_embed(built):
    workdir, config = built
    changed = {**config, "embedding": {**config["embedding"], "seed": 1}}
    out = _snakemake(workdir, changed, "-n", "embed_words")
    assert "Nothing to be done" not in out
    assert "embed_words" in out and "params have changed" in out.lower()


def test_changing_other_stages_config_does_not_rerun_embed(built):
    workdir, config = built
    changed = {**config, "manifest": {**config["manifest"], "val_fraction": 0.3}, "image_size": 32}
    changed["synthesis"] = {**config["synthesis"], "store_size": 64}
    # a UNet that can be built at 32 px (the config check refuses the smoke UNet's 8-px attention there)
    changed["train"] = {**config["train"], "unet": {**config["train"]["unet"], "attention_resolutions": []}}
    out = _snakemake(workdir, changed, "-n", "embed_words")
    assert "Nothing to be done" in out


def test_changing_the_words_reruns_embed(built):
    workdir, config = built
    prompts = {k: dict(v) for k, v in config["prompts"].items()}
    prompts["man"]["words"] = ["man", "person", "doctor"]
    out = _snakemake(workdir, {**config, "prompts": prompts}, "-n", "embed_words")
    assert "Nothing to be done" not in out
    assert "embed_words" in out and "params have changed" in out.lower()
