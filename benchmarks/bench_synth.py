"""Benchmark stages 1–2: procedural synthesis images/s at 64 px, and reading the packed array vs decoding PNGs.

Usage: .venv/bin/python benchmarks/bench_synth.py [--images 2000] [--workers 2]
Prints a table; record the numbers in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def _render_range(args):
    prompt, gender, occupation, start, stop = args
    from biasdiff.seeds import rng_for
    from biasdiff.synth.procedural import RenderSettings, encode_png, render_person
    from biasdiff.synth.stage import image_seed

    settings = RenderSettings(size=64)
    return sum(len(encode_png(render_person(rng_for(image_seed(0, prompt, i)), gender, occupation, settings))) for i in range(start, stop))


def bench_procedural(n: int, workers: int) -> float:
    """Images/s rendering + PNG-encoding `n` images spread evenly over the six prompts' looks, on `workers` processes."""
    looks = [("male_nurse", "male", "nurse"), ("female_nurse", "female", "nurse"), ("male_phil", "male", "philosopher"),
             ("female_phil", "female", "philosopher"), ("man", "male", "none"), ("woman", "female", "none")]
    per = n // len(looks)
    chunk = max(1, per // workers)
    tasks = [(p, g, o, s, min(s + chunk, per)) for p, g, o in looks for s in range(0, per, chunk)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_render_range, tasks[:workers]))  # warm up the workers (imports)
        t0 = time.perf_counter()
        list(pool.map(_render_range, tasks))
        dt = time.perf_counter() - t0
    return per * len(looks) / dt


def bench_loading(n: int) -> tuple[float, float]:
    """Images/s: decoding the PNGs from shard Parquet files vs reading the packed array (memory-mapped, copied to RAM)."""
    import pandas as pd

    from biasdiff.artifacts.manifest import load_images
    from biasdiff.manifest.build import run_manifest
    from biasdiff.manifest.build import decode_png
    from biasdiff.synth.stage import run_synthesis

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shards = []
        for k, start in enumerate(range(0, n, 500)):
            path = root / f"shard-{k:05d}.parquet"
            run_synthesis({"shard": str(path)}, {"prompt": "woman", "text": "woman", "attributes": {"gender": "female", "occupation": "none"},
                                         "start": start, "stop": min(start + 500, n), "seed": 0, "backend": "procedural",
                                         "store_size": 32, "settings": {}})
            shards.append(str(path))
        params = {"image_size": 32, "prompts": {"woman": {"words": ["woman"], "attributes": {}}},
                  "manifest": {"val_fraction": 0.1, "split_seed": 0, "contact_sheet_n": 4}}
        run_manifest(shards, {"manifest": str(root / "m.parquet"), "array": str(root / "m.npy"),
                              "counts": str(root / "c.csv")}, params)
        t0 = time.perf_counter()
        decoded = 0
        for path in shards:
            df = pd.read_parquet(path)
            for row, png in enumerate(df["png"]):
                np.asarray(decode_png(png, path, row))
                decoded += 1
        png_rate = decoded / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, array = load_images(root / "m.parquet", root / "m.npy")
        batch = np.array(array)  # force the read
        array_rate = len(batch) / (time.perf_counter() - t0)
    return png_rate, array_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    rate1 = bench_procedural(args.images, 1)
    rate = bench_procedural(args.images, args.workers)
    png_rate, array_rate = bench_loading(args.images)
    print(f"load average at end: {os.getloadavg()}")
    print("| measurement | value |\n|---|---|")
    print(f"| procedural synthesis, 64 px, 1 process | {rate1:,.0f} images/s |")
    print(f"| procedural synthesis, 64 px, {args.workers} processes | {rate:,.0f} images/s |")
    print(f"| decode PNGs from shards (32 px) | {png_rate:,.0f} images/s |")
    print(f"| read packed array (32 px) | {array_rate:,.0f} images/s |")
    print(f"| packed array speed-up | {array_rate / png_rate:,.0f}x |")


if __name__ == "__main__":
    main()
