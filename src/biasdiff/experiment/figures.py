"""Figures of the experiment summary: per-arm bars with replicate dots, the dose-response scatter with its fit,
guidance curves and training-length curves (matplotlib, Agg)."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.special import expit


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(arms):
    cmap = _plt().get_cmap("tab10")
    return {arm: cmap(i % 10) for i, arm in enumerate(arms)}


def arm_bars(summary: pd.DataFrame):
    """Main point: per word a bar per arm (pooled P(female)) with its interval and one dot per replicate."""
    plt = _plt()
    main = summary[summary["main"]]
    arms, words = list(dict.fromkeys(main["arm"])), list(dict.fromkeys(main["word"]))
    colors = _colors(arms)
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(words) * max(1, len(arms)) / 2 + 2), 4))
    width = 0.8 / len(arms)
    for j, arm in enumerate(arms):
        sub = main[main["arm"] == arm].set_index("word").reindex(words)
        x = np.arange(len(words)) + (j - (len(arms) - 1) / 2) * width
        err = np.vstack([sub["p_female"] - sub["ci_low"], sub["ci_high"] - sub["p_female"]])
        ax.bar(x, sub["p_female"], width, color=colors[arm], alpha=0.6, label=arm, yerr=err, capsize=3)
        for xi, values in zip(x, sub["replicate_p_female"]):
            if isinstance(values, (list, np.ndarray)) and len(values):
                ax.scatter(np.full(len(values), xi), values, s=12, color="black", zorder=3)
    ax.axhline(0.5, color="grey", ls="--", lw=0.8)
    ax.set_xticks(np.arange(len(words)), words)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("P(female) of samples")
    ax.set_title("P(female | word) per arm (bars: pooled over replicates, interval; dots: replicates)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def dose_response_figure(summary: pd.DataFrame, fit: Mapping[str, Any]):
    """P(female) against the word's gender projection in its arm: neutral words (filled, fitted), calibration words
    (hollow, not fitted), the logistic curve of the fit."""
    plt = _plt()
    main = summary[summary["main"] & summary["role"].isin(["neutral", "calibration"])].dropna(subset=["gender_projection"])
    arms = list(dict.fromkeys(summary["arm"]))
    colors = _colors(arms)
    markers = dict(zip(dict.fromkeys(main["word"]), "osD^vP*X"))
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for _, r in main.iterrows():
        neutral = r["role"] == "neutral"
        ax.errorbar(r["gender_projection"], r["p_female"], yerr=[[r["p_female"] - r["ci_low"]], [r["ci_high"] - r["p_female"]]],
                    fmt=markers[r["word"]], color=colors[r["arm"]], mfc=colors[r["arm"]] if neutral else "none",
                    ms=7, capsize=2, alpha=0.9 if neutral else 0.6)
    if not math.isnan(fit.get("slope", math.nan)):
        xs = np.linspace(min(main["gender_projection"].min(), -0.1), max(main["gender_projection"].max(), 0.1), 100)
        ax.plot(xs, expit(fit["intercept"] + fit["slope"] * xs), color="black", lw=1,
                label=f"logit fit, slope {fit['slope']:.2f} [{fit['slope_ci_low']:.2f}, {fit['slope_ci_high']:.2f}]")
    for arm in arms:
        ax.plot([], [], "s", color=colors[arm], label=f"arm {arm}")
    for word, m in markers.items():
        ax.plot([], [], m, color="grey", mfc="grey" if (main[main.word == word].role == "neutral").any() else "none",
                label=word)
    ax.axhline(0.5, color="grey", ls="--", lw=0.8)
    ax.axvline(0, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("gender projection of the word's vector in its arm (+ = woman)")
    ax.set_ylabel("P(female) of samples")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Dose–response (filled: neutral words, fitted; hollow: calibration words)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def curve_figure(summary: pd.DataFrame, x: str, xlabel: str, title: str):
    """One panel per word: P(female) against `x` (guidance_scale or step), one line per arm with its interval band."""
    plt = _plt()
    words = list(dict.fromkeys(summary["word"]))
    arms = list(dict.fromkeys(summary["arm"]))
    colors = _colors(arms)
    cols = min(3, len(words))
    rows = math.ceil(len(words) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False, sharey=True)
    for ax, word in zip(axes.flat, words):
        for arm in arms:
            sub = summary[(summary["word"] == word) & (summary["arm"] == arm)].sort_values(x)
            if sub.empty:
                continue
            ax.plot(sub[x], sub["p_female"], "o-", color=colors[arm], ms=4, label=arm)
            ax.fill_between(sub[x], sub["ci_low"], sub["ci_high"], color=colors[arm], alpha=0.15)
        ax.axhline(0.5, color="grey", ls="--", lw=0.8)
        ax.set_title(word, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylim(-0.02, 1.02)
    for ax in axes.flat[len(words):]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("P(female)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def guidance_figure(summary: pd.DataFrame):
    """P(female) against the classifier-free guidance scale at the final step."""
    final = summary["step"].max()
    return curve_figure(summary[summary["step"] == final], "guidance_scale", "guidance scale w",
                        "Guidance curve: P(female) vs classifier-free guidance (final weights)")


def training_length_figure(summary: pd.DataFrame):
    """P(female) against the training step at the main guidance scale."""
    w = summary.loc[summary["main"], "guidance_scale"].iloc[0]
    return curve_figure(summary[np.isclose(summary["guidance_scale"], w)], "step", "training step",
                        f"Training-length curve: P(female) vs training step (EMA weights, guidance {w:g})")


def gap_figure(contrast: pd.DataFrame, fit: dict | None = None):
    """Main point: the within-model gap P(female | a) - P(female | b) per arm: the pooled gap with its interval, one
    dot per model, and grey lines joining replicate k across arms (paired seeds: the same initialisation and data
    order), so a reader sees whether an arm moves every replicate's gap or only the mean. With an estimable `fit`
    (`biasdiff.experiment.summary.gap_fit`) a second panel: each arm's gap against its projection gap, with the line."""
    plt = _plt()
    main = contrast[contrast["main"]]
    arms = list(dict.fromkeys(main["arm"]))
    colors = _colors(arms)
    sloped = fit is not None and not np.isnan(fit["slope"])
    width = max(5, 1.2 * len(arms) + 2)
    fig, axes = plt.subplots(1, 2 if sloped else 1, figsize=(width + (5 if sloped else 0), 4), squeeze=False)
    ax = axes[0][0]
    per_rep = {}
    for i, (_, r) in enumerate(main.iterrows()):
        gaps = list(r["replicate_gap"])
        ax.errorbar([i], [r["gap"]], yerr=[[r["gap"] - r["gap_ci_low"]], [r["gap_ci_high"] - r["gap"]]], fmt="s",
                    color=colors[r["arm"]], capsize=4, ms=8, zorder=3)
        ax.scatter(np.full(len(gaps), i + 0.12), gaps, s=14, color="black", zorder=4)
        for k, g in enumerate(gaps):
            per_rep.setdefault(k, []).append((i + 0.12, g))
    for k, points in per_rep.items():
        if len(points) > 1:
            ax.plot(*zip(*points), color="grey", lw=0.7, alpha=0.7, zorder=2, gid=f"rep-{k}")
    ax.axhline(0, color="grey", ls="--", lw=0.8)
    ax.set_xticks(np.arange(len(arms)), arms, rotation=30 if len(arms) > 5 else 0)
    ax.set_ylim(-1.02, 1.02)
    a, b = main["word_a"].iloc[0], main["word_b"].iloc[0]
    ax.set_ylabel(f"P(female | {a}) − P(female | {b})")
    ax.set_title(f"Within-model gap {a} − {b} per arm (square: pooled, interval; dots: models; lines: replicate k)",
                 fontsize=9)
    if sloped:
        ax = axes[0][1]
        for _, r in main.iterrows():
            x = r["projection_gap"]
            ax.errorbar([x], [r["gap"]], yerr=[[r["gap"] - r["gap_ci_low"]], [r["gap_ci_high"] - r["gap"]]],
                        fmt="s", color=colors[r["arm"]], capsize=3, ms=7, label=r["arm"], zorder=3)
            ax.scatter(np.full(len(r["replicate_gap"]), x), r["replicate_gap"], s=10, color="black", zorder=4)
        xs = np.linspace(np.nanmin(main["projection_gap"]), np.nanmax(main["projection_gap"]), 50)
        ax.plot(xs, fit["intercept"] + fit["slope"] * xs, color="black", lw=1, gid="gap-fit")
        ax.axhline(0, color="grey", ls="--", lw=0.8)
        ax.axvline(0, color="grey", ls=":", lw=0.8)
        ax.set_ylim(-1.02, 1.02)
        ax.set_xlabel(f"projection gap {a} − {b} (+: {a} nearer woman)")
        ax.set_title(f"Gap vs projection gap: slope {fit['slope']:+.2f} [{fit['slope_ci_low']:+.2f}, "
                     f"{fit['slope_ci_high']:+.2f}] over {fit['n_arms']} arms", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
