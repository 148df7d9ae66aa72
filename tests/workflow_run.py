"""Running the workflow from tests: copy the repository into a temporary directory, run Snakemake on the smoke
config, read what a dry run would execute and how rules depend on each other."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# What a user's checkout holds that the workflow needs (results/, .snakemake/, .venv/ excluded).
COPY = ["Snakefile", "config.yaml", "rules", "scripts", "configs", "src", "envs", "report", "profiles"]
SMOKE = ("--configfile", "configs/smoke.yaml")


def copy_repo(dest: Path) -> Path:
    """Copy the workflow's files (not results) from the repository into `dest`; returns `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def preset_config(workdir: Path, preset: str = "configs/smoke.yaml") -> dict:
    """The config a run on `preset` sees: `workdir`'s config.yaml with the preset merged over it as Snakemake merges
    --configfile (presets are overlays holding only what differs from config.yaml). Not validated, no defaults."""
    from biasdiff.config import merge_config, read_yaml

    return merge_config(read_yaml(Path(workdir) / "config.yaml"), read_yaml(Path(workdir) / preset))


def snakemake(workdir: Path, *args: str, timeout: float = 600, smoke: bool = True, env=None) -> subprocess.CompletedProcess:
    """Run Snakemake in `workdir` (on configs/smoke.yaml unless smoke=False); never raises on failure."""
    cmd = [*SNAKEMAKE, *args, *(SMOKE if smoke else ())]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)


def planned_jobs(workdir: Path, *targets: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run would execute, sorted; wildcards "" for rules without any."""
    out = snakemake(workdir, *targets, "--dry-run", "--cores", "1")
    assert out.returncode == 0, out.stderr[-4000:]
    jobs: list[tuple[str, str]] = []
    for line in out.stdout.splitlines():
        stripped = line.strip()
        m = re.fullmatch(r"(?:local)?rule (\w+):", stripped)
        if m:
            jobs.append((m.group(1), ""))
            continue
        m = re.fullmatch(r"wildcards: (.*)", stripped)
        if m and jobs and jobs[-1][1] == "":
            jobs[-1] = (jobs[-1][0], m.group(1))
    return sorted(jobs)


def planned_rules(workdir: Path, *targets: str) -> set[str]:
    """Names of the rules a dry run would execute."""
    return {rule for rule, _ in planned_jobs(workdir, *targets)}


def rule_graph(workdir: Path, target: str = "all") -> dict[str, set[str]]:
    """rule -> rules that consume its outputs (edges of `snakemake --rulegraph` for `target`).

    Every rule of the DAG is a key, leaves map to an empty set.
    """
    out = snakemake(workdir, target, "--rulegraph", "--cores", "1")
    assert out.returncode == 0, out.stderr[-4000:]
    names: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for line in out.stdout.splitlines():
        m = re.match(r'\s*(\d+)\[label = "([^"]+)"', line)
        if m:
            names[m.group(1)] = m.group(2)
        m = re.match(r"\s*(\d+) -> (\d+)", line)
        if m:
            edges.append((m.group(1), m.group(2)))
    graph: dict[str, set[str]] = {name: set() for name in names.values()}
    for src, dst in edges:
        graph[names[src]].add(names[dst])
    return graph


def downstream(graph: dict[str, set[str]], roots: set[str]) -> set[str]:
    """`roots` and every rule that (transitively) consumes their outputs."""
    seen, todo = set(), list(roots)
    while todo:
        rule = todo.pop()
        if rule not in seen:
            seen.add(rule)
            todo.extend(graph.get(rule, ()))
    return seen
