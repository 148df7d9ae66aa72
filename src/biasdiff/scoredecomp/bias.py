"""Score-space bias of a word: how female is the model's score for "nurse"?

On real images x0, at each timestep t (noise shared by every condition), decompose ε̂(x_t, t, word) on
{ε̂(x_t, t, male), ε̂(x_t, t, female)} over the simplex (K = 2: the projection onto the segment between the two
outputs). The weight on `female` is the word's female share of the score at that (image, t); averaged over images
it is the word's score-space bias per t. 0.5 = the word's score sits midway between the two gender words.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from biasdiff.errors import ConfigError
from biasdiff.scores.decomp import decompose
from biasdiff.scores.noise import iter_noised

SCORE_BIAS_COLUMNS = ["word", "t", "images", "female_weight", "female_weight_se", "female_weight_q05",
                      "female_weight_q95", "n"]


def score_bias_weights(model, x0: torch.Tensor, image_seeds: Sequence[int], words: Sequence[str], male: str = "man",
                       female: str = "woman", timesteps: Sequence[int] = (100,), n_draws: int = 1,
                       space: str = "eps", chunk: int | None = None, progress: bool = False) -> np.ndarray:
    """Female weights (W, N, T, R) for W words, N images, T timesteps, R noise draws.

    Costs N · (W + 2) · T · R evaluations (male, female and each word on the same x_t).
    """
    words = list(words)
    if not words:
        raise ConfigError("score bias needs at least one word")
    names = [male, female, *words]
    ids = [model.condition_id(n) for n in names]
    n = x0.shape[0]
    out = np.zeros((len(words), n, len(timesteps), n_draws))
    chunk = chunk or max(1, getattr(model, "batch_size", 64) // len(names))
    for rows, ti, t, r, x_t, _ in tqdm(iter_noised(model, x0, image_seeds, timesteps, n_draws, chunk),
                                       disable=not progress, desc="score bias"):
        pred = model.predict_conditions(x_t, torch.full((x_t.shape[0],), t), ids, space=space)
        flat = pred.reshape(pred.shape[0], pred.shape[1], -1).cpu().numpy()
        for wi in range(len(words)):
            out[wi, rows, ti, r] = decompose(flat[2 + wi], flat[:2], "simplex")[:, 1]
    return out


def summarize_score_bias(weights: np.ndarray, words: Sequence[str], timesteps: Sequence[int],
                         image_gender: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table (SCORE_BIAS_COLUMNS): per word, t and image group ("all", and each value of image_gender),
    the mean female weight over images (each image's weight averaged over draws), its standard error and 5/95 %
    quantiles."""
    per_image = weights.mean(axis=3)  # (W, N, T)
    groups = {"all": np.ones(per_image.shape[1], dtype=bool)}
    if image_gender is not None:
        g = np.asarray(image_gender)
        groups.update({str(v): g == v for v in sorted(set(g.tolist()))})
    rows = []
    for wi, word in enumerate(words):
        for ti, t in enumerate(timesteps):
            for name, mask in groups.items():
                v = per_image[wi, mask, ti]
                if not len(v):
                    continue
                rows.append({"word": word, "t": int(t), "images": name, "female_weight": float(v.mean()),
                             "female_weight_se": float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan"),
                             "female_weight_q05": float(np.quantile(v, 0.05)),
                             "female_weight_q95": float(np.quantile(v, 0.95)), "n": int(len(v))})
    return pd.DataFrame(rows, columns=SCORE_BIAS_COLUMNS)


def plot_score_bias(table: pd.DataFrame):
    """Female weight against t, one line per word (all images), with ±1.96 SE bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    sub = table[table["images"] == "all"]
    for word, grp in sub.groupby("word", sort=False):
        grp = grp.sort_values("t")
        ax.plot(grp["t"], grp["female_weight"], marker="o", label=word)
        ax.fill_between(grp["t"], grp["female_weight"] - 1.96 * grp["female_weight_se"].fillna(0),
                        grp["female_weight"] + 1.96 * grp["female_weight_se"].fillna(0), alpha=0.2)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("timestep t")
    ax.set_ylabel("female weight of the word's score")
    ax.set_ylim(0, 1)
    ax.set_title("Score-space gender bias per word")
    ax.legend(fontsize=8)
    return fig
