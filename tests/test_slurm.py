"""The smoke workflow through a real SLURM: scripts/slurm_local.sh brings up a single-node cluster on this machine,
Snakemake submits every job of `all` with profiles/slurm (+ the profiles/slurm-ci override for the local node), and
SLURM's own records show each of them ran there.

Needs root and either Debian's slurm packages or apt-get to install them (CI machines have both); otherwise the
test is skipped with the reason in the pytest summary.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from workflow_run import ROOT, copy_repo, planned_jobs, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

SCRIPT = ROOT / "scripts/slurm_local.sh"
LOCK = Path("/tmp/biasdiff-slurm-test.lock")  # one local cluster per host: concurrent sessions take turns
RUN_TIMEOUT = 1200  # outer bound on the whole SLURM run: a hung status check must fail the test, not hang it
PROFILE = ("--profile", "profiles/slurm", "--workflow-profile", "profiles/slurm-ci")


def why_not_here() -> str | None:
    """Why this machine cannot host the throwaway cluster, or None if it can."""
    if os.geteuid() != 0:
        return "needs root to run slurmctld/slurmd/munged (scripts/slurm_local.sh)"
    installed = all(shutil.which(b, path="/usr/sbin:/usr/bin:/sbin:/bin") for b in ("slurmctld", "slurmd", "munged", "sbatch"))
    if not installed and not shutil.which("apt-get"):
        return "SLURM is not installed and there is no apt-get to install it"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and not conf.is_symlink():
        return "this machine has a real SLURM configuration (/etc/slurm/slurm.conf); not starting a second cluster"
    return None


@pytest.fixture(scope="module")
def local_slurm(tmp_path_factory):
    reason = why_not_here()
    if reason:
        pytest.skip(reason)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Directly under /tmp: pytest's own temp tree is private (0700) and munged runs as user munge.
        state = Path(tempfile.mkdtemp(prefix="biasdiff-slurm-"))
        start = time.monotonic()
        up = subprocess.run([str(SCRIPT), "up", str(state)], capture_output=True, text=True, timeout=900)
        bringup = time.monotonic() - start
        try:
            assert up.returncode == 0, f"slurm_local.sh up failed:\n{up.stderr[-3000:]}"
            env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf")}
            yield SimpleNamespace(dir=state, env=env, bringup_seconds=bringup)
        finally:
            down = subprocess.run([str(SCRIPT), "down", str(state)], capture_output=True, text=True, timeout=120)
            assert down.returncode == 0, down.stderr
            shutil.rmtree(state, ignore_errors=True)


def slurm_jobs(env) -> dict[str, str]:
    """SLURM job id -> state of every job the local controller remembers (MinJobAge keeps finished ones 300 s)."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %T"], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    return dict(line.split() for line in out.stdout.splitlines() if line.strip())


def test_smoke_workflow_runs_every_job_on_slurm(local_slurm, tmp_path):
    workdir = copy_repo(tmp_path / "wf")
    expected = {rule for rule, _ in planned_jobs(workdir)} - {"all"}  # `all` is a local rule

    start = time.monotonic()
    out = snakemake(workdir, *PROFILE, "all", timeout=RUN_TIMEOUT, env=local_slurm.env)
    wall = time.monotonic() - start
    log = out.stdout + out.stderr
    assert out.returncode == 0, f"SLURM run failed after {wall:.0f} s:\n{log[-6000:]}"
    assert planned_jobs(workdir) == [], "the SLURM run left work undone"

    # Snakemake says it submitted each job to SLURM; SLURM knows every one of those ids, all completed.
    submitted = set(re.findall(r"has been submitted with SLURM jobid (\d+)", log))
    submitted |= set(re.findall(r"and SLURM job ID (\d+)\.", log))
    assert submitted, log[-3000:]
    states = slurm_jobs(local_slurm.env)
    for job_id in submitted:
        tasks = {k: v for k, v in states.items() if k == job_id or k.startswith(f"{job_id}_")}
        assert tasks and set(tasks.values()) == {"COMPLETED"}, f"SLURM job {job_id}: {tasks}"

    # Every rule of the DAG ran inside a SLURM job: its Snakemake job-step log sits under .snakemake/slurm_logs/.
    step_logs = "\n".join(p.read_text(errors="replace") for p in (workdir / ".snakemake/slurm_logs").rglob("*.log"))
    ran_in_slurm = set(re.findall(r"^\s*(?:local)?rule (\w+):", step_logs, flags=re.M))
    assert expected <= ran_in_slurm, f"rules not seen in any SLURM job log: {sorted(expected - ran_in_slurm)}"

    print(f"\nSLURM smoke: bring-up {local_slurm.bringup_seconds:.1f} s, run {wall:.1f} s, {len(submitted)} sbatch jobs")
