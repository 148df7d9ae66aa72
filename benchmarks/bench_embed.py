"""Benchmark of the embed stage on the default config (config.yaml: GloVe 6B-50d wheel, k = 128).

Measures (1) the wall time of `snakemake embed_words` in a fresh temporary directory (Snakemake start-up, DAG,
the script's imports, the GloVe load, the computation, the writes), and (2) the library steps in-process.
Also reports how stable the nurse > person > philosopher order is across JL seeds in the projected space.

    .venv/bin/python benchmarks/bench_embed.py [--repeats 3] [--seeds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rule_wall_time() -> tuple[float, float, dict]:
    """Wall time and CPU time (user + sys of Snakemake and its script process) of one `snakemake embed_words`."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", tmp,
               "--configfile", str(ROOT / "config.yaml"), "--cores", "1", "embed_words"]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(proc.stdout + proc.stderr)
        dist = json.loads((Path(tmp) / "results" / "embeddings" / "distortion.json").read_text())
    return wall, cpu, dist


def library_steps() -> dict:
    times = {}
    start = time.perf_counter()
    from biasdiff.embed.stage import compute_embeddings, run_embed  # noqa: F401
    from biasdiff.vectors.sources import load_source

    times["import biasdiff.embed (gensim, pandas)"] = time.perf_counter() - start
    start = time.perf_counter()
    kv, label = load_source({"kind": "glove-wheel"})
    times["load GloVe 6B-50d wheel (400000 x 50)"] = time.perf_counter() - start
    start = time.perf_counter()
    compute_embeddings(kv, label, ["man", "nurse", "person", "philosopher", "woman"], {})
    times["project + diagnostics (1000 reference words, 10000 WEAT permutations)"] = time.perf_counter() - start
    return times


def order_stability(n_seeds: int) -> tuple[int, list]:
    from biasdiff.embed.stage import compute_embeddings
    from biasdiff.vectors.sources import load_source

    kv, label = load_source({"kind": "glove-wheel"})
    held, rows = 0, []
    for seed in range(n_seeds):
        res = compute_embeddings(kv, label, ["man", "nurse", "person", "philosopher", "woman"],
                                 {"seed": seed, "reference_words": 10, "weat_permutations": 10})  # fmt: skip
        proj = res.bias[res.bias["space"] == "projected"].set_index("word")["gender_projection"]
        ok = proj["nurse"] > proj["person"] > proj["philosopher"]
        held += int(ok)
        rows.append((seed, proj["nurse"], proj["person"], proj["philosopher"], ok))
    return held, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    walls, cpus = [], []
    load = os.getloadavg()[0]
    for _ in range(args.repeats):
        wall, cpu, dist = rule_wall_time()
        walls.append(wall)
        cpus.append(cpu)
    print(f"machine: {os.cpu_count()} cores, 1-min load average at start {load:.1f} (shared machine)")
    print()
    print("| measurement | value |")
    print("| --- | --- |")
    print(f"| `snakemake embed_words` wall time, default config (s), {args.repeats} runs | "
          f"{' / '.join(f'{w:.1f}' for w in walls)} (min {min(walls):.1f}) |")  # fmt: skip
    print(f"| same runs, CPU time user + sys (s) | {' / '.join(f'{c:.1f}' for c in cpus)} |")
    for name, secs in library_steps().items():
        print(f"| {name} (s) | {secs:.2f} |")
    for which in ("conditioning", "reference"):
        d = dist[which]
        print(f"| JL distortion d={dist['d']} -> k={dist['k']}, seed {dist['seed']}, {which} words ({d['n_pairs']} pairs): "
              f"max / mean abs(ratio - 1) | {d['max']:.3f} / {d['mean']:.3f} |")  # fmt: skip
    held, rows = order_stability(args.seeds)
    print(
        f"| nurse > person > philosopher in the projected space, JL seeds 0..{args.seeds - 1} | {held}/{args.seeds} |"
    )
    print()
    print("| seed | nurse | person | philosopher | order holds |")
    print("| --- | --- | --- | --- | --- |")
    for seed, n, p, ph, ok in rows:
        print(f"| {seed} | {n:+.3f} | {p:+.3f} | {ph:+.3f} | {ok} |")


if __name__ == "__main__":
    main()
