"""Figures of the sample audit: P(female) per word with Wilson intervals; output bias vs embedding bias."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _yerr(audit: pd.DataFrame) -> np.ndarray:
    f = audit["frac_female"].to_numpy()
    return np.vstack([f - audit["ci_low"].to_numpy(), audit["ci_high"].to_numpy() - f]).clip(min=0)


def bias_bars(audit: pd.DataFrame):
    """Bar per word: fraction of samples classified female with 95% Wilson error bars; training fraction as a
    red diamond; 0.5 dashed."""
    fig, ax = plt.subplots(figsize=(1.2 * len(audit) + 2, 3.5))
    x = np.arange(len(audit))
    ax.bar(x, audit["frac_female"], yerr=_yerr(audit), capsize=4, color="#7b9fd4", label="samples (95% Wilson CI)")
    ax.scatter(x, audit["train_frac_female"], marker="D", s=30, color="#d62728", zorder=3, label="training data")
    ax.axhline(0.5, ls="--", lw=0.8, color="gray")
    ax.set_xticks(x, audit["word"])
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("P(female | word)")
    ax.set_title("What the model draws per conditioning word")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def bias_scatter(audit: pd.DataFrame):
    """Left: P(female) of the samples vs the word's embedding gender projection. Right: the excess over the training
    data, P(female) − train P(female), vs the same projection (the Lipschitz question: does embedding bias leak?)."""
    rows = audit[np.isfinite(audit["embedding_projection"])]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, excess in zip(axes, (False, True)):
        y = rows["frac_female"] - (rows["train_frac_female"] if excess else 0)
        ax.errorbar(rows["embedding_projection"], y, yerr=_yerr(rows), fmt="o", capsize=3)
        for word, px, py in zip(rows["word"], rows["embedding_projection"], y):
            ax.annotate(word, (px, py), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.axvline(0, lw=0.6, color="gray")
        ax.axhline(0 if excess else 0.5, lw=0.6, ls="--", color="gray")
        ax.set_xlabel("embedding gender projection (> 0 = nearer 'woman')")
        ax.set_ylabel("P(female) − train P(female)" if excess else "P(female) of samples")
    fig.suptitle("Output bias vs embedding bias")
    fig.tight_layout()
    return fig
