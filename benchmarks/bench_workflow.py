"""Workflow-level timings: how fast Snakemake plans this DAG, and what a SLURM run costs beyond the jobs themselves.

    python benchmarks/bench_workflow.py              # dry runs (default config after a run up to TARGET; paper DAG)
    python benchmarks/bench_workflow.py --slurm      # also: the smoke workflow through a throwaway local SLURM

1. `snakemake -n` on a complete default-size results/ (goal <= 3 s). The default config is first run for real up
   to --target (default: build_manifest, i.e. 6,000 procedural images; `all` also trains), in benchmarks/out/default.
2. DAG build for configs/paper.yaml (36,000 images, 72 shards): `snakemake -n` with no results (goal <= 10 s).
3. --slurm: scripts/slurm_local.sh up, the smoke workflow with profiles/slurm + profiles/slurm-ci, down. Reports
   bring-up time, wall time, and the share of the wall time during which no SLURM job was running (submission and
   status polling: the plugin's first check comes after slurm-init-seconds-before-status-checks, then every +10 s
   while nothing finishes).
Prints a table; numbers go to benchmarks/RESULTS.md ("## Workflow and SLURM").
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks/out"
COPY = ["Snakefile", "config.yaml", "rules", "scripts", "configs", "src", "envs", "report", "profiles"]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def copy_repo(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def run(workdir: Path, *args: str, env=None, timeout=7200) -> tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    out = subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, env=env, timeout=timeout)
    elapsed = time.monotonic() - start
    if out.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed in {workdir}:\n{out.stderr[-4000:]}")
    return elapsed, out


def best_of(n: int, workdir: Path, *args: str) -> float:
    return min(run(workdir, *args)[0] for _ in range(n))


def job_count(out: subprocess.CompletedProcess) -> int:
    for line in out.stdout.splitlines():
        if line.startswith("total"):
            return int(line.split()[1])
    return 0


def bench_default(target: str, cores: str) -> list[tuple[str, str]]:
    workdir = copy_repo(OUT / "default")
    elapsed, _ = run(workdir, "--cores", cores, target)
    rows = [(f"default config: real run up to `{target}` (setup, not a goal)", f"{elapsed:.1f} s")]
    t_done = best_of(3, workdir, "-n", "--cores", "1", target)
    rows.append((f"`snakemake -n {target}` on the finished results (nothing to do)", f"{t_done:.2f} s"))
    _, out = run(workdir, "-n", "--quiet", "rules", "--cores", "1")
    t_all = best_of(3, workdir, "-n", "--quiet", "rules", "--cores", "1")
    rows.append((f"`snakemake -n` (all) on the same results ({job_count(out)} jobs left)", f"{t_all:.2f} s"))
    return rows


def bench_paper() -> list[tuple[str, str]]:
    workdir = copy_repo(OUT / "paper")
    shutil.rmtree(workdir / "results", ignore_errors=True)
    _, out = run(workdir, "-n", "--quiet", "rules", "--cores", "1", "--configfile", "configs/paper.yaml")
    t = best_of(3, workdir, "-n", "--quiet", "rules", "--cores", "1", "--configfile", "configs/paper.yaml")
    return [(f"configs/paper.yaml DAG, no results: `snakemake -n` ({job_count(out)} jobs)", f"{t:.2f} s")]


def squeue_intervals(env) -> list[tuple[float, float]]:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%S %e"], capture_output=True, text=True, env=env)
    spans = []
    for line in out.stdout.split("\n"):
        parts = line.split()
        if len(parts) == 2 and "N/A" not in parts:
            start, end = (datetime.fromisoformat(p).timestamp() for p in parts)
            spans.append((start, end))
    return spans


def covered(spans: list[tuple[float, float]]) -> float:
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(spans):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


def bench_slurm() -> list[tuple[str, str]]:
    state = OUT / "slurm-state"
    shutil.rmtree(state, ignore_errors=True)
    workdir = copy_repo(OUT / "slurm-wf")
    shutil.rmtree(workdir / "results", ignore_errors=True)
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
    script = ROOT / "scripts/slurm_local.sh"
    start = time.monotonic()
    subprocess.run([str(script), "up", str(state)], check=True, capture_output=True, timeout=900)
    bringup = time.monotonic() - start
    env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf")}
    try:
        t0 = time.time()
        wall, out = run(workdir, "--profile", "profiles/slurm", "--workflow-profile", "profiles/slurm-ci",
                        "--configfile", "configs/smoke.yaml", env=env, timeout=1800)
        spans = [(max(s, t0), e) for s, e in squeue_intervals(env)]
        busy = covered(spans)
        n_jobs = len(spans)
    finally:
        t_down = time.monotonic()
        subprocess.run([str(script), "down", str(state)], capture_output=True, timeout=120)
        down = time.monotonic() - t_down
    return [
        ("local SLURM bring-up (slurm_local.sh up, packages installed)", f"{bringup:.1f} s"),
        (f"smoke workflow through SLURM: wall time ({n_jobs} SLURM jobs/tasks)", f"{wall:.0f} s"),
        ("  of which at least one SLURM job running", f"{busy:.0f} s"),
        ("  of which no job running (submission + status polling)", f"{wall - busy:.0f} s ({(wall - busy) / wall:.0%})"),
        ("local SLURM teardown (slurm_local.sh down)", f"{down:.1f} s"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="build_manifest", help="how far to run the default config first")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--slurm", action="store_true", help="also time the smoke workflow through a local SLURM")
    parser.add_argument("--skip-default", action="store_true", help="skip the default-config run (slow)")
    args = parser.parse_args()
    rows = [] if args.skip_default else bench_default(args.target, args.cores)
    rows += bench_paper()
    if args.slurm:
        rows += bench_slurm()
    width = max(len(name) for name, _ in rows)
    print(f"{'measurement':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
