"""Score similarity (the seed's diff_prompts_same_score): how alike are a model's outputs under different conditions?

- Across conditions: per image and timestep, one noise draw shared by every condition; cosine between the outputs of
  every pair of conditions; averaged over images. Heatmap per timestep, curve per pair against t.
- Across timesteps: per image, ONE noise draw shared by every timestep (x_t moves along one forward trajectory);
  cosine between a condition's outputs at every pair of timesteps; averaged over images. Heatmap per condition.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from biasdiff.scores.noise import iter_noised, shared_noise

PAIR_COLUMNS = ["t", "condition_a", "condition_b", "cosine", "cosine_std", "n"]
TIME_COLUMNS = ["condition", "t_a", "t_b", "cosine", "cosine_std", "n"]


def _cosines(flat: np.ndarray) -> np.ndarray:
    """flat (C, B, d) -> (B, C, C) cosine matrices."""
    unit = flat / np.maximum(np.linalg.norm(flat, axis=2, keepdims=True), 1e-300)
    return np.einsum("cbd,ebd->bce", unit, unit)


def _label(name: str) -> str:
    return name if name else "(null)"


def condition_similarity(model, x0: torch.Tensor, image_seeds: Sequence[int], conditions: Sequence[str],
                         timesteps: Sequence[int], space: str = "eps", chunk: int | None = None,
                         progress: bool = False) -> pd.DataFrame:
    """Mean cosine between outputs of every ordered pair of conditions, per timestep (PAIR_COLUMNS; null = "")."""
    ids = [model.condition_id(c) for c in conditions]
    c, n = len(conditions), x0.shape[0]
    acc = np.zeros((len(timesteps), n, c, c))
    chunk = chunk or max(1, getattr(model, "batch_size", 64) // c)
    for rows, ti, t, _, x_t, _ in tqdm(iter_noised(model, x0, image_seeds, timesteps, 1, chunk), disable=not progress,
                                       desc="condition similarity"):
        out = model.predict_conditions(x_t, torch.full((x_t.shape[0],), t), ids, space=space)
        acc[ti, rows] = _cosines(out.reshape(c, out.shape[1], -1).double().cpu().numpy())
    records = []
    for ti, t in enumerate(timesteps):
        for a in range(c):
            for b in range(c):
                v = acc[ti, :, a, b]
                records.append({"t": int(t), "condition_a": conditions[a], "condition_b": conditions[b],
                                "cosine": float(v.mean()), "cosine_std": float(v.std()), "n": int(n)})
    return pd.DataFrame(records, columns=PAIR_COLUMNS)


def timestep_similarity(model, x0: torch.Tensor, image_seeds: Sequence[int], conditions: Sequence[str],
                        timesteps: Sequence[int], space: str = "eps", chunk: int | None = None,
                        progress: bool = False) -> pd.DataFrame:
    """Mean cosine between one condition's outputs at every ordered pair of timesteps (TIME_COLUMNS)."""
    ids = [model.condition_id(c) for c in conditions]
    c, n, nt = len(conditions), x0.shape[0], len(timesteps)
    seeds = np.asarray(image_seeds, dtype=np.int64)
    chunk = chunk or max(1, getattr(model, "batch_size", 64) // c)
    acc = np.zeros((c, n, nt, nt))
    for start in tqdm(range(0, n, chunk), disable=not progress, desc="timestep similarity"):
        rows = slice(start, min(start + chunk, n))
        x = x0[rows]
        noise = shared_noise(seeds[rows], "across-t", 0, x.shape[1:]).to(x.device)
        outs = []
        for t in timesteps:
            tt = torch.full((x.shape[0],), int(t), dtype=torch.long)
            out = model.predict_conditions(model.add_noise(x, noise, tt), tt, ids, space=space)
            outs.append(out.reshape(c, x.shape[0], -1).double().cpu().numpy())
        stacked = np.stack(outs, axis=2)  # (C, B, T, d)
        unit = stacked / np.maximum(np.linalg.norm(stacked, axis=3, keepdims=True), 1e-300)
        acc[:, rows] = np.einsum("cbtd,cbsd->cbts", unit, unit)
    records = []
    for ci, cond in enumerate(conditions):
        for a, ta in enumerate(timesteps):
            for b, tb in enumerate(timesteps):
                v = acc[ci, :, a, b]
                records.append({"condition": cond, "t_a": int(ta), "t_b": int(tb), "cosine": float(v.mean()),
                                "cosine_std": float(v.std()), "n": int(n)})
    return pd.DataFrame(records, columns=TIME_COLUMNS)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _heatmap(ax, matrix: np.ndarray, labels: Sequence[str], title: str, vmin: float | None = None):
    im = ax.imshow(matrix, cmap="coolwarm", vmin=vmin if vmin is not None else np.nanmin(matrix), vmax=1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, f"{matrix[i, j]:.3f}", ha="center", va="center", fontsize=5)
    ax.set_title(title, fontsize=9)
    return im


def plot_condition_heatmaps(table: pd.DataFrame):
    """One heatmap of mean cosine between conditions per timestep."""
    plt = _plt()
    ts = sorted(table["t"].unique())
    conds = list(dict.fromkeys(table["condition_a"]))
    fig, axes = plt.subplots(1, len(ts), figsize=(4.2 * len(ts), 3.6), squeeze=False, layout="constrained")
    vmin = float(table["cosine"].min())
    for ax, t in zip(axes[0], ts):
        m = table[table["t"] == t].pivot(index="condition_a", columns="condition_b", values="cosine")
        m = m.loc[conds, conds].to_numpy()
        im = _heatmap(ax, m, [_label(c) for c in conds], f"t = {t}", vmin=vmin)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="cosine")
    fig.suptitle("Mean cosine of the model's outputs between conditions (same x_t)")
    return fig


def plot_pair_curves(table: pd.DataFrame):
    """Mean cosine against t, one line per unordered pair of distinct conditions."""
    plt = _plt()
    conds = list(dict.fromkeys(table["condition_a"]))
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, a in enumerate(conds):
        for b in conds[i + 1:]:
            grp = table[(table["condition_a"] == a) & (table["condition_b"] == b)].sort_values("t")
            ax.plot(grp["t"], grp["cosine"], marker="o", label=f"{_label(a)} / {_label(b)}")
    ax.set_xlabel("timestep t")
    ax.set_ylabel("mean cosine of outputs")
    ax.set_title("Score similarity between conditions")
    ax.legend(fontsize=7)
    return fig


def plot_timestep_heatmaps(table: pd.DataFrame):
    """One t × t heatmap of mean cosine per condition."""
    plt = _plt()
    conds = list(dict.fromkeys(table["condition"]))
    ts = sorted(table["t_a"].unique())
    fig, axes = plt.subplots(1, len(conds), figsize=(4.2 * len(conds), 3.6), squeeze=False, layout="constrained")
    vmin = float(table["cosine"].min())
    for ax, cond in zip(axes[0], conds):
        m = table[table["condition"] == cond].pivot(index="t_a", columns="t_b", values="cosine").loc[ts, ts]
        im = _heatmap(ax, m.to_numpy(), [str(t) for t in ts], _label(cond), vmin=vmin)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="cosine")
    return fig
