"""The four positive controls: does the audit detect a 9:1 gender plant in each occupation context, in each direction?

Each preset (configs/control_{nurse,philosopher}_{female,male}.yaml) trains the default pipeline on data where one
occupation has 9 images of one gender for every one of the other; the audit of its samples is compared with the
balanced default run's on that occupation's word: Fisher's exact test (two-sided, scipy) on the women/men counts of
the two runs, and the direction of the move. Detected = p < 0.01 in the planted direction. A control that is not
detected marks a context the readout is not fit for.

    python benchmarks/positive_controls.py --run          # runs the four controls (about 15 min each on 2 cores)
    python benchmarks/positive_controls.py                # compares existing results only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import pandas as pd
import yaml
from scipy.stats import fisher_exact

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ["control_nurse_female", "control_nurse_male", "control_philosopher_female", "control_philosopher_male"]
ALPHA = 0.01


def planted(preset: str) -> tuple[str, str, str]:
    """(results directory, occupation word, planted gender) of a control preset, read from its file."""
    cfg = yaml.safe_load((ROOT / "configs" / f"{preset}.yaml").read_text())
    _, occupation, gender = preset.split("_")
    return cfg["results"], occupation, gender


def compare(baseline: pd.DataFrame, control: pd.DataFrame, word: str, gender: str) -> dict:
    b, c = baseline.set_index("word").loc[word], control.set_index("word").loc[word]
    table = [[int(c["n_female"]), int(c["n"] - c["n_female"])], [int(b["n_female"]), int(b["n"] - b["n_female"])]]
    _, p = fisher_exact(table)
    moved_up = c["frac_female"] > b["frac_female"]
    right_way = moved_up if gender == "female" else not moved_up
    row = {"word": word, "planted": gender, "train_frac_female": float(c["train_frac_female"]),
           "balanced": float(b["frac_female"]), "control": float(c["frac_female"]),
           "control_ci": [float(c["ci_low"]), float(c["ci_high"])], "fisher_p": float(p),
           "detected": bool(p < ALPHA and right_way)}
    for name, frame in (("balanced_corrected", b), ("control_corrected", c)):
        row[name] = float(frame.get("frac_female_corrected", float("nan")))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="run each control's audit through Snakemake first")
    ap.add_argument("--presets", nargs="*", default=PRESETS)
    ap.add_argument("--baseline", default="results", help="results directory of the balanced default run")
    ap.add_argument("--cores", default="2")
    ap.add_argument("--out", default="benchmarks/out/positive_controls")
    args = ap.parse_args()
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    baseline = pd.read_parquet(ROOT / args.baseline / "audit/sample_bias.parquet")
    rows = []
    for preset in args.presets:
        results, word, gender = planted(preset)
        minutes = None
        if args.run:
            t0 = time.perf_counter()
            subprocess.run(["snakemake", f"{results}/audit/sample_bias.parquet", "--cores", args.cores, "-q",
                            "--configfile", f"configs/{preset}.yaml"], cwd=ROOT, check=True)
            minutes = round((time.perf_counter() - t0) / 60, 1)
        row = {"preset": preset, **compare(baseline, pd.read_parquet(ROOT / results / "audit/sample_bias.parquet"),
                                           word, gender), "minutes": minutes}
        rows.append(row)
        print(json.dumps(row))
    (out / "positive_controls.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["| preset | word | training P(female) | balanced run | control run [95% CI] | Fisher p | detected "
             "| corrected: balanced → control | wall |", "|---|---|---:|---:|---|---:|---|---|---:|"]
    for r in rows:
        lines.append(f"| `{r['preset']}` | {r['word']} | {r['train_frac_female']:.2f} | {r['balanced']:.3f} "
                     f"| {r['control']:.3f} [{r['control_ci'][0]:.3f}, {r['control_ci'][1]:.3f}] "
                     f"| {r['fisher_p']:.2g} | {'yes' if r['detected'] else '**no**'} "
                     f"| {r['balanced_corrected']:.3f} → {r['control_corrected']:.3f} "
                     f"| {'' if r['minutes'] is None else str(r['minutes']) + ' min'} |")
    (out / "positive_controls.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
