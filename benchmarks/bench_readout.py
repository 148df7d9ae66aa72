"""The instrument's readout per context on an existing results directory: detectability ladders and SDEdit
sensitivity/specificity, with their wall times. Used to measure the renderer before/after its change on artifacts a
past run left (the workflow's rules readout_detectability / readout_sdedit make the same tables for the current run).

    python benchmarks/bench_readout.py --results results --out benchmarks/out/readout_before
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from biasdiff.audit.readout import run_detectability, run_sdedit
from biasdiff.config import section_defaults
from biasdiff.logs import setup_logging


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-cell", type=int, default=None)
    args = ap.parse_args()
    res, out = Path(args.results), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    setup_logging(str(out / "bench_readout.log"))
    audit = section_defaults("audit")
    settings = {**audit["readout"], "per_cell": args.per_cell,
                "sampling": section_defaults("sample")}
    common = dict(manifest=res / "manifest/images.parquet", images=res / "manifest/images.npy",
                  classifier_dir=res / "audit/classifier", classifier_metrics=res / "audit/classifier_metrics.json",
                  model_dir=res / f"models/{args.model}", conditioning=res / "embeddings/conditioning.parquet")
    times = {}
    t0 = time.perf_counter()
    det = run_detectability(**common, outputs={"table": out / "detectability.parquet",
                                               "curves": out / "detectability.png"}, settings=settings)
    times["detectability_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    sd = run_sdedit(**common, outputs={"table": out / "sdedit.parquet", "rates": out / "sdedit.csv",
                                       "examples": out / "sdedit.png"}, settings=settings)
    times["sdedit_s"] = round(time.perf_counter() - t0, 1)
    (out / "times.json").write_text(json.dumps(times) + "\n")
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(det.pivot_table(index=["kind", "level"], columns=["context", "gender"], values="accuracy").round(3))
        print(sd.pivot_table(index="strength", columns=["context", "rate_name"], values="rate").round(3))
    print(times)


if __name__ == "__main__":
    main()
