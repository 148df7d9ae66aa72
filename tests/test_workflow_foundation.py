"""Snakemake on configs/smoke.yaml in a temporary directory: synthesis → manifest, then precise invalidation."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
COPY = ["Snakefile", "config.yaml", "rules", "scripts", "schemas", "configs", "envs", "src", "report"]

pytestmark = pytest.mark.workflow


def _copy_repo(dest: Path) -> Path:
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, *args, "--cores", "2", "--configfile", "configs/smoke.yaml"]  # --configfile takes several values: last
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=600)


def planned_jobs(workdir: Path, target: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run would execute for `target`."""
    out = _snakemake(workdir, target, "-n")
    assert out.returncode == 0, out.stderr[-3000:]
    jobs, rule = [], None
    for line in (out.stdout + out.stderr).splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
            jobs.append((rule, ""))
            continue
        m = re.match(r"^wildcards: (.*)$", line.strip())
        if m and rule and jobs and jobs[-1] == (rule, ""):
            jobs[-1] = (rule, m.group(1))
    return jobs


@pytest.fixture(scope="module")
def manifest_run(tmp_path_factory):
    workdir = _copy_repo(tmp_path_factory.mktemp("smoke-manifest"))
    out = _snakemake(workdir, "build_manifest")
    assert out.returncode == 0, out.stderr[-5000:]
    return workdir


def test_smoke_run_produces_manifest(manifest_run):
    manifest = pd.read_parquet(manifest_run / "results/manifest/images.parquet")
    assert manifest.groupby("prompt").size().to_dict() == {p: 24 for p in ["female_nurse", "female_phil", "male_nurse", "male_phil", "man", "woman"]}
    assert (manifest_run / "results/manifest/contact_female_nurse.png").stat().st_size > 0
    assert (manifest_run / "results/logs/build_manifest.log").read_text().count("manifest:") == 1


def test_second_dry_run_schedules_nothing(manifest_run):
    assert planned_jobs(manifest_run, "build_manifest") == []


def test_raising_one_count_schedules_only_its_new_shards(manifest_run, tmp_path):
    workdir = _copy_repo_from(manifest_run, tmp_path / "w")
    cfg = workdir / "configs/smoke.yaml"
    text = cfg.read_text()
    block = text.index("  woman:")
    cfg.write_text(text[:block] + text[block:].replace("count: 24", "count: 48", 1))
    jobs = sorted(planned_jobs(workdir, "build_manifest"))
    assert jobs == [
        ("build_manifest", ""),
        ("synthesize_shard", "prompt=woman, shard=00002"),
        ("synthesize_shard", "prompt=woman, shard=00003"),
    ]


def test_unrelated_section_change_reruns_nothing_here(manifest_run, tmp_path):
    workdir = _copy_repo_from(manifest_run, tmp_path / "w")
    cfg = workdir / "configs/smoke.yaml"
    cfg.write_text(cfg.read_text().replace("contact_sheet_n: 16", "contact_sheet_n: 16\n  split_seed: 0"))
    assert planned_jobs(workdir, "build_manifest") == []


def _copy_repo_from(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest
