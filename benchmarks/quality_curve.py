"""Quality of the default model vs training minutes: does a longer run reach the calibration floors?

Issue 13 item 4 asks for a default model that draws what it is told (P(female | woman) >= 0.90, P(female | man) <=
0.05, P(female | null) within 0.5 ± 0.1, disputed share <= 0.10 for every word) inside make demo's budget, and, where
a floor is not reached in the budget, for the curve of quality against training minutes. This script draws that curve:
for each step count it trains config.yaml's default model with benchmarks/probe_conditioning.py (a separate run per
length, so each has its own OneCycle schedule, as the workflow would train it), samples 200 per word at the workflow's
sampling settings and labels them with the run's attribute classifier, then checks each model against the audit's own
floors (`biasdiff.audit.sample_audit.calibration`, the function that marks make demo's table uncalibrated).

Runs are resumable: a length whose summary.json exists is not retrained. Needs a finished manifest, conditioning table
and classifier under --results (`snakemake --cores 2 results/logs/train_attribute_classifier.log
results/embeddings/conditioning.parquet`, ~2 min).

Usage: .venv/bin/python benchmarks/quality_curve.py --steps 400 800 1600 3200 [--set p_uncond=0.1] [--tag base]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from statsmodels.stats.proportion import proportion_confint  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

from biasdiff.audit.sample_audit import CALIBRATION_DEFAULTS, calibration  # noqa: E402


def run_length(steps: int, args) -> dict:
    """Train + sample + label one run of `steps` steps (probe_conditioning.py), or read the finished one."""
    name = f"{args.tag}-s{steps}"
    summary = Path(args.out) / name / "summary.json"
    if not summary.exists():
        sample = yaml.safe_load((ROOT / "config.yaml").read_text())["sample"]
        cmd = [sys.executable, str(HERE / "probe_conditioning.py"), "--name", name, "--results", args.results,
               "--out", args.out, "--n", str(args.n), "--sample-steps", str(sample["steps"]),
               "--guidance", str(sample["guidance_scale"]), "--eta", str(sample["eta"]),
               "--set", f"steps={steps}", *args.set]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=HERE)
    return json.loads(summary.read_text())


def curve_row(steps: int, summary: dict) -> dict:
    per_word = pd.DataFrame(summary["per_word"]).replace({"word": {"(null)": "null"}})
    cal = calibration(per_word)
    by_word = per_word.set_index("word")
    return {"steps": steps, "train_min": summary["train_s"] / 60, "val_loss": summary["final_val_loss"],
            "n": int(summary["n"]),
            **{f"female_{w}": float(by_word.loc[w, "frac_female"]) for w in by_word.index},
            "max_disputed": float(by_word["frac_disputed"].max()),
            "most_disputed": str(by_word["frac_disputed"].idxmax()),
            "floors_missed": len(cal["failures"]), "failures": "; ".join(cal["failures"]) or "none"}


def plot(frame: pd.DataFrame, path: Path, title: str) -> None:
    f = CALIBRATION_DEFAULTS
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    x = frame["train_min"]
    for col, label, style in [("female_woman", "P(female | woman)", "o-"), ("female_man", "P(female | man)", "s-"),
                              ("female_null", "P(female | null)", "^-")]:
        # 95% Wilson interval of each proportion: sampling only (one trained model per length)
        lo, hi = proportion_confint(np.round(frame[col] * frame["n"]), frame["n"], method="wilson")
        ax.errorbar(x, frame[col], yerr=[frame[col] - lo, hi - frame[col]], fmt=style, capsize=3, label=label)
    ax.plot(x, frame["max_disputed"], "x--", label="largest disputed share")
    ax.axhline(f["female_min"], color="C0", lw=0.8, ls=":")
    ax.axhline(f["male_max"], color="C1", lw=0.8, ls=":")
    ax.axhspan(f["null_center"] - f["null_tolerance"], f["null_center"] + f["null_tolerance"], color="C2", alpha=0.1)
    ax.axhline(f["disputed_max"], color="C3", lw=0.8, ls=":")
    for _, r in frame.iterrows():
        ax.annotate(f"{int(r.steps)}", (r.train_min, r.female_woman), textcoords="offset points", xytext=(0, 5),
                    ha="center", fontsize=7)
    ax.set_xlabel("training wall time on 2 cores (min; labels: steps)")
    ax.set_ylabel("share of 200 samples per word")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title + "\n(bars: 95% Wilson, sampling only; one model per length)", fontsize=9)
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", required=True)
    parser.add_argument("--set", nargs="*", default=[], help="train-config overrides for every length, key.sub=value")
    parser.add_argument("--tag", default="default", help="prefix of the runs' names (one tag per --set)")
    parser.add_argument("--results", default=str(ROOT / "results"))
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/out/curve"))
    args = parser.parse_args()

    frame = pd.DataFrame([curve_row(s, run_length(s, args)) for s in sorted(args.steps)])
    stem = Path(args.out) / f"{args.tag}-curve"
    frame.to_csv(stem.with_suffix(".csv"), index=False)
    plot(frame, stem.with_suffix(".png"), f"{args.tag}{': ' + ' '.join(args.set) if args.set else ''} - calibration floors vs training time")
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(frame.round(3).to_string(index=False))
    print(f"wrote {stem}.csv and {stem}.png")


if __name__ == "__main__":
    main()
