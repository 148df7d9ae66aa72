"""Coverage of the experiment summary's between-model interval on simulated models with known variance components.

Each simulated arm has R replicate models whose true P(female) is p_r = expit(mu + tau * z), z ~ N(0, 1) (training
noise on the logit scale), and each model's n samples give k_r ~ Binomial(n, p_r). The estimand is the arm's mean over
models, E[p_r]. For each setting: coverage and mean width of the summary's interval (Student t on the R replicate
proportions, `biasdiff.experiment.stats.replicate_interval`) and, for contrast, of a Wilson interval on the pooled
counts (what a single-model, sampling-only interval claims). Writes benchmarks/out/interval_coverage.csv.

    python benchmarks/interval_coverage.py            # about a minute on one core
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, logit

from biasdiff.experiment.stats import simulate_coverage

OUT = Path(__file__).resolve().parent / "out" / "interval_coverage.csv"
# (P(female) at tau = 0, tau on the logit scale): the demo's nurse (0.72) and philosopher (0.08) rows, a balanced word;
# tau 0.5 ~ the woman row's spread between two trainings (0.65 vs 0.90), 1.0 a larger one, 0.1 nearly none.
SETTINGS = [(p, tau, r) for p in (0.72, 0.08, 0.5) for tau in (0.1, 0.5, 1.0) for r in (3, 5)]


def main() -> None:
    rows = []
    for p, tau, r in SETTINGS:
        sim = simulate_coverage(float(logit(p)), tau, r, n=200, sims=2000, seed=1)
        rng = np.random.default_rng(2)
        hits = 0
        for _ in range(2000):
            k = rng.binomial(200, expit(logit(p) + tau * rng.standard_normal(r)))
            ci = stats.binomtest(int(k.sum()), 200 * r).proportion_ci(method="wilson")
            hits += ci.low <= sim["truth"] <= ci.high
        rows.append({"p_at_tau0": p, "tau_logit": tau, "replicates": r, "n_per_model": 200, "truth": sim["truth"],
                     "coverage_t": sim["coverage"], "mean_width_t": sim["mean_width"],
                     "coverage_pooled_wilson": hits / 2000})
        print(f"p {p:.2f} tau {tau:.1f} R {r}: truth {sim['truth']:.3f}  t-interval coverage {sim['coverage']:.3f} "
              f"(width {sim['mean_width']:.3f})  pooled Wilson {hits / 2000:.3f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(OUT, index=False, float_format="%.4f")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
