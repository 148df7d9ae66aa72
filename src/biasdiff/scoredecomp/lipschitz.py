"""Lipschitz-in-the-condition diagnostic: the paper's premise, measured.

For every pair of conditions (y1, y2), image x0 and timestep t (one noise draw shared by both conditions):

    ratio = ||ε̂(x_t, t, y1) − ε̂(x_t, t, y2)||₂ / ||y1 − y2||₂

with y the conditioning vector the network actually receives (`model.condition_vector`: the word vector for the
own DDPM, the flattened text-encoder states for diffusers). The output norm runs over every entry of ε̂ (C·H·W).
The largest ratio over images lower-bounds the Lipschitz constant of y ↦ ε̂(x_t, t, y) at that t.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from biasdiff.errors import ConfigError
from biasdiff.scores.noise import iter_noised

RATIO_COLUMNS = ["image", "t", "word_a", "word_b", "output_distance", "condition_distance", "ratio"]
SUMMARY_COLUMNS = ["word_a", "word_b", "t", "condition_distance", "n", "mean", "std", "median", "q05", "q95", "max"]


def lipschitz_ratios(model, x0: torch.Tensor, image_seeds: Sequence[int], words: Sequence[str],
                     timesteps: Sequence[int], space: str = "eps", chunk: int | None = None,
                     progress: bool = False) -> pd.DataFrame:
    """One row per (image, t, unordered pair of words) (RATIO_COLUMNS). Costs N · W · T evaluations."""
    words = list(words)
    pairs = list(itertools.combinations(range(len(words)), 2))
    if not pairs:
        raise ConfigError(f"the Lipschitz diagnostic needs at least 2 words; got {words}")
    vecs = np.stack([model.condition_vector(w) for w in words]).astype(np.float64)
    cond_dist = {(a, b): float(np.linalg.norm(vecs[a] - vecs[b])) for a, b in pairs}
    same = [(words[a], words[b]) for (a, b), d in cond_dist.items() if d == 0]
    if same:
        raise ConfigError(f"conditions {same} have identical vectors; the ratio is undefined for them")
    ids = [model.condition_id(w) for w in words]
    chunk = chunk or max(1, getattr(model, "batch_size", 64) // len(words))
    records = []
    for rows, _, t, _, x_t, _ in tqdm(iter_noised(model, x0, image_seeds, timesteps, 1, chunk), disable=not progress,
                                      desc="lipschitz"):
        out = model.predict_conditions(x_t, torch.full((x_t.shape[0],), t), ids, space=space)
        flat = out.reshape(len(words), out.shape[1], -1).double().cpu().numpy()
        for a, b in pairs:
            dist = np.linalg.norm(flat[a] - flat[b], axis=1)
            for i, d in zip(range(rows.start, rows.stop), dist):
                records.append({"image": i, "t": int(t), "word_a": words[a], "word_b": words[b],
                                "output_distance": float(d), "condition_distance": cond_dist[(a, b)],
                                "ratio": float(d) / cond_dist[(a, b)]})
    return pd.DataFrame(records, columns=RATIO_COLUMNS)


def summarize_lipschitz(ratios: pd.DataFrame) -> pd.DataFrame:
    """Distribution of the ratio per pair and t (SUMMARY_COLUMNS)."""
    grouped = ratios.groupby(["word_a", "word_b", "t"], sort=False)
    out = grouped.agg(condition_distance=("condition_distance", "first"), n=("ratio", "size"), mean=("ratio", "mean"),
                      std=("ratio", "std"), median=("ratio", "median"), q05=("ratio", lambda v: v.quantile(0.05)),
                      q95=("ratio", lambda v: v.quantile(0.95)), max=("ratio", "max")).reset_index()
    return out[SUMMARY_COLUMNS]


def plot_lipschitz(summary: pd.DataFrame):
    """Median ratio against t per pair, with the 5–95 % band; log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (a, b), grp in summary.groupby(["word_a", "word_b"], sort=False):
        grp = grp.sort_values("t")
        label = f"{a or '(null)'} / {b or '(null)'} (‖Δy‖={grp['condition_distance'].iloc[0]:.2f})"
        ax.plot(grp["t"], grp["median"], marker="o", label=label)
        ax.fill_between(grp["t"], grp["q05"], grp["q95"], alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel("timestep t")
    ax.set_ylabel("‖ε̂(y1) − ε̂(y2)‖ / ‖y1 − y2‖")
    ax.set_title("Lipschitz ratio of the score in the condition")
    ax.legend(fontsize=6, ncol=2)
    return fig
