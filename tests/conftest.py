"""Shared fixtures for workflow tests: one complete smoke run per test session, copied by the tests that mutate it.

`smoke_workdir` copies the workflow (Snakefile, rules/, scripts/, configs/, config.yaml, src/, envs/,
report/, profiles/) into a temporary directory and runs `snakemake --cores 2 --configfile configs/smoke.yaml` there
once. Tests that edit files copy that finished directory first (`copy_workdir`), so they never disturb each other.
Helpers for running Snakemake and reading dry runs live in tests/workflow_run.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workflow_run import copy_repo, snakemake


@pytest.fixture(scope="session")
def smoke_workdir(tmp_path_factory) -> Path:
    """A temporary copy of the workflow after a complete, successful smoke run (target `all`). Do not mutate it."""
    workdir = copy_repo(tmp_path_factory.mktemp("smoke") / "wf")
    out = snakemake(workdir, "--cores", "2", timeout=1500)
    assert out.returncode == 0, f"smoke run failed:\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    return workdir


@pytest.fixture
def copy_workdir(smoke_workdir, tmp_path):
    """A private copy of the finished smoke run (Snakemake metadata included), for tests that edit files."""

    def _copy(name: str = "wf") -> Path:
        dest = tmp_path / name
        shutil.copytree(smoke_workdir, dest, symlinks=True)
        return dest

    return _copy
