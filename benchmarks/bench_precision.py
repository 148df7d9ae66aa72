"""Does bf16 change the science? The default model trained at equal steps in fp32 with two seeds and in bf16 with
one (and, for speed, a 2x2-patch UNet in bf16), each sampled and labelled the same way (probe_conditioning.py:
200 DDIM-20 samples per word, guidance 3, eta 1, the run's attribute classifier).

bf16 leaves the science unchanged if, word by word, its P(female) and its validation-loss curve differ from the fp32
seed-0 model's no more than the fp32 seed-1 model's do (between-model variation is the yardstick).

Usage: .venv/bin/python benchmarks/bench_precision.py [--run] [--results results] [--out benchmarks/out/precision]
(--run trains the four models first, ~40 min on 2 cores; without it, only the comparison of finished runs.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
P2 = ["unet.patch_size=2", "unet.block_out_channels=[32, 64, 128]", "unet.attention_resolutions=[4]",
      "unet.attention_head_dim=32"]
RUNS = {  # name -> (precision, train-config overrides)
    "fp32-s0": ("fp32", ["seed=0"]),
    "fp32-s1": ("fp32", ["seed=1"]),
    "bf16-s0": ("bf16", ["seed=0"]),
    "p2-bf16-s0": ("bf16", ["seed=0", *P2]),
}


def run(name: str, results: str, out: str) -> None:
    precision, overrides = RUNS[name]
    cmd = [sys.executable, str(ROOT / "benchmarks" / "probe_conditioning.py"), "--name", name, "--results", results,
           "--out", out, "--n", "200", "--sample-steps", "20", "--guidance", "3", "--eta", "1",
           "--precision", precision, "--set", *overrides]
    subprocess.run(cmd, check=True)


def compare(out: Path) -> None:
    summaries = {n: json.loads((out / n / "summary.json").read_text()) for n in RUNS if (out / n / "summary.json").is_file()}
    if "fp32-s0" not in summaries:
        raise SystemExit(f"no finished runs in {out}; run with --run first")
    per_word = pd.DataFrame({n: {r["word"]: r["frac_female"] for r in s["per_word"]} for n, s in summaries.items()})
    disputed = pd.DataFrame({n: {r["word"]: r["frac_disputed"] for r in s["per_word"]} for n, s in summaries.items()})
    print("P(female) per word (200 samples each; the sampling SD of one entry is at most 0.035):")
    print(per_word.round(3).to_string())
    print("\nshare of samples the classifier's members dispute:")
    print(disputed.round(3).to_string())
    ref = per_word["fp32-s0"]
    for name in per_word.columns.drop("fp32-s0"):
        diff = (per_word[name] - ref).abs()
        print(f"|{name} - fp32-s0|: max {diff.max():.3f}, mean {diff.mean():.3f}")
    logs = {n: pd.read_csv(out / n / "model" / "train_log.csv").dropna(subset=["val_loss"]).set_index("step")["val_loss"]
            for n in summaries}
    val = pd.DataFrame(logs)
    print("\nvalidation loss (fixed t and noise) at each evaluation:")
    print(val.round(5).to_string())
    for name in val.columns.drop("fp32-s0"):
        rel = ((val[name] - val["fp32-s0"]).abs() / val["fp32-s0"]).max()
        print(f"max relative val-loss difference {name} vs fp32-s0: {rel:.4f}")
    print("\ntraining / sampling seconds:", {n: (s["train_s"], s["sample_s"]) for n, s in summaries.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--results", default="results")
    parser.add_argument("--out", default="benchmarks/out/precision")
    args = parser.parse_args()
    if args.run:
        for name in RUNS:
            run(name, args.results, args.out)
    compare(Path(args.out))


if __name__ == "__main__":
    main()
