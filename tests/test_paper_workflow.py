"""configs/paper.yaml through the workflow, offline: every stage the paper configures runs to `rule all` and the HTML
report on tiny stand-ins in the real formats (tests/paper_standins.py), and the cluster plan puts every job that asks
for a GPU on a GPU partition.

The run overlays `--configfile configs/paper.yaml paper_tiny.yaml` (Snakemake deep-merges config.yaml < paper.yaml <
overlay). The overlay only points the paper's hub ids and data paths at the stand-ins and shrinks counts and sizes;
everything else (SD 2.1's DPMSolverSDE synthesis with CFG, word2vec conditioning through a file, epoch-counted
training, the ancestral DDPM sampler over all 1000 steps, FairFace with race prompts and the diffusers score model,
StableBias with SD 2.1's text encoder and CLIP labels) is the paper's.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

import paper_standins as standins
from workflow_run import ROOT, copy_repo, preset_config, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

PAPER = ("--configfile", "configs/paper.yaml", "paper_tiny.yaml")
# Nothing may reach the hub: every model is a local directory, and these make any attempt fail instead of download.
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
# The default workstation profile (auto-applied) counts one GPU; the stand-ins run on the CPU, two at a time.
RUN = ("--cores", "2", "--resources", "gpu=2")
PROMPT_COUNT = 4


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    """Every stand-in, built once: the SD 2.1 pipeline, word2vec file, FairFace in both layouts, StableBias, CLIP."""
    base = tmp_path_factory.mktemp("paper_standins")
    prompts = preset_config(ROOT, "configs/paper.yaml")["prompts"]  # words: config.yaml's (paper.yaml is an overlay)
    fairface = {"train": standins.fairface_rows(14, "train"), "val": standins.fairface_rows(6, "val", seed=1)}
    return {
        "sd21": standins.build_sd21_pipeline(base / "stable-diffusion-2-1"),
        "word2vec": standins.write_word2vec(base / "GoogleNews-vectors-negative300.bin", standins.paper_words(prompts)),
        "fairface_official": standins.write_fairface_official(base / "fairface", fairface),
        "fairface_hf": standins.write_fairface_hf(base / "fairface-hf", fairface),
        "stablebias": standins.write_stablebias_images(base / "stable-bias-professions-v2"),
        "clip": standins.build_clip(base / "clip-vit-base-patch32"),
    }


def tiny_overlay(paths: dict[str, Path], fairface_root: Path | None = None) -> dict:
    """configs/paper.yaml made tiny: stand-ins for the hub ids and data paths, small counts and sizes."""
    sd21 = str(paths["sd21"])
    return {
        "image_size": 16,
        "prompts": {name: {"count": PROMPT_COUNT, "shard_size": PROMPT_COUNT} for name in
                    yaml.safe_load((ROOT / "configs/paper.yaml").read_text())["prompts"]},
        "synthesis": {"store_size": 16,
                      "diffusers": {"model": sd21, "steps": 2, "height": 32, "width": 32, "batch_size": PROMPT_COUNT}},
        # Half held out: the classifier needs both a val and a test image among 24.
        "manifest": {"val_fraction": 0.5, "contact_sheet_n": 4},
        "embedding": {"source": {"kind": "file", "path": str(paths["word2vec"])}, "reference_words": 20,
                      "weat_permutations": 100},
        "fairface": {"root": str(fairface_root or paths["fairface_official"]), "num_data": 6, "image_size": 32,
                     "score_model": {"id": sd21, "batch_size": 8}, "elbo": {"n_timesteps": 2}},
        "stablebias": {"text_encoder": {"model": sd21},
                       "dataset": {"path": str(paths["stablebias"]), "clip": str(paths["clip"]),
                                   "max_per_profession": 1}},
        "train": {"unet": {"block_out_channels": [8, 16], "layers_per_block": 1, "attention_resolutions": [8],
                           "attention_head_dim": 8, "norm_num_groups": 4},
                  "batch_size": 16, "epochs": 1, "val_every": 2, "checkpoint_every": 2, "grid": {"n": 2, "steps": 2}},
        "sample": {"n": 2, "batch_size": 2, "grid_n": 2},
        # The random-weight stand-in draws noise, which no classifier labels: no accuracy floor.
        "audit": {"gender_accuracy_floor": 0.0,
                  "classifier": {"epochs": 1, "batch_size": 16, "width": 8, "members": 2, "patience": 1}},
        "scoredecomp": {"n_images": 4, "n_samples": 2, "timesteps": [5, 400], "n_draws": 1, "elbo": {"budgets": [1, 5]},
                        "score_bias": {"timesteps": [5, 950], "n_draws": 1, "n_images": 2},
                        "similarity": {"timesteps": [5, 900], "n_images": 2},
                        "lipschitz": {"timesteps": [5, 900], "n_images": 2}},
    }  # fmt: skip


def _run(workdir: Path, *args: str, timeout: float = 900):
    out = snakemake(workdir, *args, *PAPER, timeout=timeout, smoke=False, env=OFFLINE)
    assert out.returncode == 0, f"{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    return out


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory, paths) -> Path:
    """A copy of the workflow after `snakemake` (rule all) on paper.yaml + the tiny overlay. Do not mutate it."""
    workdir = copy_repo(tmp_path_factory.mktemp("paper") / "wf")
    (workdir / "paper_tiny.yaml").write_text(yaml.safe_dump(tiny_overlay(paths), sort_keys=False))
    _run(workdir, *RUN, timeout=1200)
    return workdir


def test_paper_config_runs_every_stage_to_rule_all(paper_run, paths):
    results = paper_run / "results"
    dry = _run(paper_run, "-n", "--cores", "1")
    assert "Nothing to be done" in dry.stdout + dry.stderr  # rule all is complete
    # synthesis: the SD 2.1 stand-in by local path, one seed per image
    shards = pd.concat(pd.read_parquet(p) for p in sorted((results / "synth").glob("*/shard-*.parquet")))
    assert len(shards) == 6 * PROMPT_COUNT and shards["seed"].is_unique
    assert (shards["backend"] == "diffusers").all() and (shards["model_id"] == str(paths["sd21"])).all()
    # embed: the word2vec binary file, projected to the paper's 128 dimensions
    cond = pd.read_parquet(results / "embeddings/conditioning.parquet")
    assert set(cond["word"]) == {"man", "woman", "nurse", "philosopher", "person"}
    assert (cond["source"] == f"file:{paths['word2vec']}").all() and (cond["dim"] == 128).all()
    assert len(pd.read_parquet(results / "embeddings/vectors.parquet")["vector"].iloc[0]) == standins.WORD2VEC_DIM
    # train: counted in epochs (paper.yaml), not config.yaml's 800 steps
    trained = yaml.safe_load((results / "models/default/train_config.json").read_text())
    assert trained["train"]["steps"] is None and trained["train"]["epochs"] == 1
    assert trained["result"]["steps"] == trained["result"]["steps_per_epoch"] >= 1
    # sample: the paper's ancestral DDPM over all 1000 steps
    meta = pd.read_parquet(results / "samples/default/nurse.parquet")
    assert len(meta) == 2 and (meta["sampler"] == "ddpm").all() and (meta["steps"] == 1000).all()
    # FairFace: gender and the seven race prompts, scored by the SD 2.1 stand-in (v-prediction)
    pred = pd.read_parquet(results / "audit/fairface_predictions.parquet")
    assert set(pred["task"]) == {"gender", "race"} and set(pred["method"]) == {"scoredecomp", "elbo"}
    assert pred["image_id"].nunique() == 6 and pred["file"].str.endswith(".jpg").all()
    assert {len(c) for c in pred[pred["task"] == "race"]["classes"]} == {7}
    assert "(official, padding 0.25)" in (results / "logs/fairface_audit.log").read_text()
    # StableBias: word2vec projection, SD 2.1's text encoder (flattened), CLIP labels of the images dataset
    emb = pd.read_parquet(results / "audit/stablebias_embedding.parquet")
    assert len(emb) == 150 and emb["word_projection"].notna().all()
    assert (emb["text_encoder"] == f"{paths['sd21']}:flatten").all() and emb["text_ratio"].notna().all()
    out = pd.read_parquet(results / "audit/stablebias_output.parquet")
    clip = out[out["source"] == "clip_zero_shot"]
    assert set(clip["model"]) == {"SD_14", "SD_2"} and (clip[clip["status"] == "ok"]["n_images"] == 1).all()
    assert (clip["status"] == "ok").sum() == 8
    # score audits of the own DDPM
    for name in ("scoredecomp_accuracy", "scoredecomp_samples", "score_bias", "lipschitz_summary"):
        assert len(pd.read_parquet(results / f"audit/{name}.parquet")) > 0, name


def test_report_gathers_the_paper_run(paper_run, tmp_path):
    report = tmp_path / "report.html"
    _run(paper_run, "--report", str(report))
    html = report.read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    for stage in ("synthesize", "manifest", "embed", "train", "sample", "fairface", "stablebias"):
        if (ROOT / "report" / f"{stage}.rst").is_file():
            assert stage in html, stage


def test_hf_parquet_fairface_gives_the_official_layouts_predictions(paper_run, paths, tmp_path):
    """Pointing fairface.root at the same images in the Hugging Face Parquet layout reruns only the FairFace audit,
    and every prediction (ScoreDecomp weights, ELBO errors) is the same as from the official CSV layout."""
    workdir = tmp_path / "wf"
    shutil.copytree(paper_run, workdir, symlinks=True)
    official = pd.read_parquet(workdir / "results/audit/fairface_predictions.parquet")
    overlay = tiny_overlay(paths, fairface_root=paths["fairface_hf"])
    (workdir / "paper_tiny.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    dry = _run(workdir, "-n", "--cores", "1")
    planned = re.findall(r"^\s*(?:local)?rule (\w+):", dry.stdout + dry.stderr, flags=re.M)
    assert sorted(set(planned)) == ["all", "fairface_audit"]
    _run(workdir, "fairface_audit", *RUN)
    assert "(hf_parquet, padding 0.25)" in (workdir / "results/logs/fairface_audit.log").read_text()
    hf = pd.read_parquet(workdir / "results/audit/fairface_predictions.parquet")
    assert not hf["file"].str.endswith(".jpg").any()
    for column in ("image_id", "gender", "race", "task", "method", "true", "pred", "evals"):
        assert hf[column].tolist() == official[column].tolist(), column
    assert [list(w) for w in hf["weights"]] == [list(w) for w in official["weights"]]  # bit-identical


def _planned_resources(stdout: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job of a dry run's listing."""
    jobs = []
    for block in re.split(r"\n\s*\n", stdout):
        rule = re.search(r"^\s*(?:local)?rule (\w+):", block, flags=re.M)
        res = re.search(r"^\s*resources: (.*)$", block, flags=re.M)
        if rule:
            pairs = [kv.split("=", 1) for kv in res.group(1).split(", ")] if res else []
            jobs.append((rule.group(1), {k.strip(): v.strip() for k, v in pairs}))
    return jobs


def test_slurm_plan_puts_every_gpu_job_on_a_gpu_partition(paths, tmp_path):
    """The paper's full-size plan through profiles/slurm: each job that asks for a GPU goes to a partition the profile
    gives GPU rules, never to the default (CPU) partition; every rule that runs a network on the paper's path asks for
    one. (Only the local data paths the config checks before planning point at the stand-ins; counts stay the
    paper's.)"""
    workdir = copy_repo(tmp_path / "wf")
    local = {"fairface": {"root": str(paths["fairface_official"])},
             "stablebias": {"dataset": {"path": str(paths["stablebias"])}}}
    (workdir / "paper_local.yaml").write_text(yaml.safe_dump(local))
    out = snakemake(workdir, "-n", "--profile", "profiles/slurm", "--workflow-profile", "none",
                    "--configfile", "configs/paper.yaml", "paper_local.yaml", smoke=False, env=OFFLINE)  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    cpu_partition = profile["default-resources"]["slurm_partition"]
    gpu_partitions = {spec["slurm_partition"] for spec in profile["set-resources"].values() if spec.get("gpu", 0) > 0}
    assert gpu_partitions and cpu_partition not in gpu_partitions
    jobs = _planned_resources(out.stdout)
    assert sum(rule == "synthesize_shard" for rule, _ in jobs) == 72  # 6 prompts x 6000 images / 500 per shard
    gpu_rules = set()
    for rule, res in jobs:
        if int(res.get("gpu", 0)) > 0:
            gpu_rules.add(rule)
            assert res.get("slurm_partition") in gpu_partitions, f"{rule} asks for a GPU on partition {res}"
    expected = {"synthesize_shard", "train_ddpm", "sample_word", "fairface_audit", "stablebias_audit",
                "scoredecomp_accuracy", "scoredecomp_samples", "score_bias", "score_similarity", "lipschitz_diagnostic"}
    assert expected <= gpu_rules, sorted(expected - gpu_rules)
