"""Linear regression and rank correlation of output bias on embedding bias (scipy's implementations)."""

from __future__ import annotations

import numpy as np
from scipy.stats import linregress, spearmanr


def relate(x, y) -> dict:
    """Least-squares fit y = slope * x + intercept and Spearman's rho over the pairs where both are finite.

    Returns n, slope, intercept, r, r2, p (two-sided, slope = 0), stderr, spearman_rho, spearman_p, n_dropped.
    Fewer than 3 finite pairs, or a constant x, give NaN statistics (reported, not raised).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    xs, ys = x[ok], y[ok]
    out = {"n": int(ok.sum()), "n_dropped": int((~ok).sum())}
    nan = float("nan")
    if out["n"] < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return out | dict(slope=nan, intercept=nan, r=nan, r2=nan, p=nan, stderr=nan, spearman_rho=nan, spearman_p=nan)
    fit = linregress(xs, ys)
    rho = spearmanr(xs, ys)
    return out | {
        "slope": float(fit.slope),
        "intercept": float(fit.intercept),
        "r": float(fit.rvalue),
        "r2": float(fit.rvalue**2),
        "p": float(fit.pvalue),
        "stderr": float(fit.stderr),
        "spearman_rho": float(rho.statistic),
        "spearman_p": float(rho.pvalue),
    }
