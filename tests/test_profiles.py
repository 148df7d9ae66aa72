"""The profiles parse as Snakemake 9 reads them, say what they promise, and name only rules that exist."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from snakemake.cli import get_argument_parser

from workflow_run import ROOT


def parsed(*profiles: str):
    """Snakemake's own parse of the profiles (as --profile/--workflow-profile would apply them, later wins)."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return get_argument_parser(profiles=[f"profiles/{p}" for p in profiles]).parse_args([])
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def workflow_rules() -> set[str]:
    out = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def test_default_profile_queues_gpu_jobs_and_reruns_incomplete():
    args = parsed("default")
    assert args.resources["gpu"].value == 1
    assert args.rerun_incomplete and args.printshellcmds
    assert int(args.cores) >= 1


def test_slurm_profile_requests_gpus_the_way_the_plugin_reads_them():
    args = parsed("slurm")
    assert args.executor == "slurm"
    assert {"slurm_partition", "runtime", "mem_mb"} <= set(args.default_resources)
    for rule in ("train_ddpm", "sample_word"):
        assert args.set_resources[rule]["gpu"].value == 1  # the plugin turns `gpu` into sbatch --gpus=N
    assert args.slurm_array_jobs == "synthesize_shard"
    assert "slurm_account" not in args.default_resources


def test_ci_override_is_gpu_free_and_polls_with_squeue():
    args = parsed("slurm", "slurm-ci")
    assert args.executor == "slurm"
    assert args.slurm_status_command == "squeue"
    # squeue forgets finished jobs after MinJobAge (3600 s in scripts/slurm_local.sh): needs >= 3 x the first delay.
    assert 3 * args.slurm_init_seconds_before_status_checks <= 3600
    assert all(res["gpu"].value == 0 for res in args.set_resources.values())
    assert args.default_resources["slurm_partition"] is not None


@pytest.mark.parametrize("profile", ["slurm", "slurm-ci"])
def test_profiles_name_only_existing_rules(profile, workflow_rules):
    spec = yaml.safe_load((ROOT / "profiles" / profile / "config.yaml").read_text())
    named = set(spec.get("set-resources", {})) | set(spec.get("set-threads", {})) | set(spec.get("groups", {}))
    named |= {r.strip() for r in str(spec.get("slurm-array-jobs", "")).split(",") if r.strip() and r.strip() != "all"}
    assert named, "profile names no rules"
    assert named <= workflow_rules, f"unknown rules in profiles/{profile}: {sorted(named - workflow_rules)}"
