"""ScoreDecomp: attribute proportions of an image from one shared noise draw per timestep.

For an image x0, a timestep t and a noise ε shared by every condition, x_t = add_noise(x0, ε, t); the base output
s0 = ε̂(x_t, t, base) (the null condition or a base prompt/word) and the attribute outputs s_k = ε̂(x_t, t, attr_k)
are compared by one of these variants:

- `simplex`: w = argmin ||S w − s0||₂ over the probability simplex (columns of S = s_k): attribute proportions;
- `cosine`: cos(s0, s_k);
- `neg_l1`, `neg_l2`: −||s0 − s_k||_p;
- `pca_simplex`: centre [s0, s_1..s_K], normalise each row, project on the first 2 principal axes, then simplex LS.

Scores are kept per (timestep, draw) so that averages over any subset of timesteps and draws — and the exact number
of network evaluations that subset costs, (K + 1) · |timesteps| · draws per image — come from one run.
The label is the argmax of the averaged scores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from biasdiff.errors import ConfigError
from biasdiff.scores.noise import iter_noised
from biasdiff.scores.simplex import simplex_least_squares

log = logging.getLogger(__name__)

VARIANTS = ("simplex", "cosine", "neg_l1", "neg_l2", "pca_simplex")


def check_variants(variants: Sequence[str]) -> list[str]:
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise ConfigError(f"ScoreDecomp variants {list(variants)}: {bad or 'none given'} not valid; use some of {list(VARIANTS)}")
    return list(variants)


def decompose(base: np.ndarray, attrs: np.ndarray, variant: str) -> np.ndarray:
    """Scores (B, K) of one variant. base: (B, d) = s0 per image; attrs: (K, B, d) = s_k per image."""
    base = np.asarray(base, dtype=np.float64)
    attrs = np.asarray(attrs, dtype=np.float64)
    k, b = attrs.shape[0], attrs.shape[1]
    if variant == "simplex":
        return np.stack([simplex_least_squares(attrs[:, i].T, base[i]) for i in range(b)]) if b else np.zeros((0, k))
    if variant == "cosine":
        num = np.einsum("bd,kbd->bk", base, attrs)
        den = np.linalg.norm(base, axis=1)[:, None] * np.linalg.norm(attrs, axis=2).T
        return num / np.maximum(den, 1e-300)
    if variant in ("neg_l1", "neg_l2"):
        p = 1 if variant == "neg_l1" else 2
        return -np.linalg.norm(attrs - base[None], ord=p, axis=2).T
    if variant == "pca_simplex":
        out = np.zeros((b, k))
        for i in range(b):
            X = np.concatenate([base[i][None], attrs[:, i]], axis=0)
            X = X - X.mean(axis=0, keepdims=True)
            X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-300)
            _, _, vt = np.linalg.svd(X, full_matrices=False)
            P = X @ vt[:2].T  # (K + 1, 2)
            out[i] = simplex_least_squares(P[1:].T, P[0])
        return out
    raise ConfigError(f"ScoreDecomp variant {variant!r} is not one of {list(VARIANTS)}")


@dataclass
class DecompResult:
    """Per-image scores of one variant: scores (N, T, R, K) for N images, T timesteps, R draws, K attributes."""

    variant: str
    attributes: list[str]
    base: str
    timesteps: list[int]
    scores: np.ndarray
    evals_per_image: int  # of the full run: (K + 1) · T · R
    n_conditions: int = field(default=0)

    def mean_scores(self, t_index: Sequence[int] | None = None, n_draws: int | None = None) -> np.ndarray:
        """(N, K) scores averaged over the chosen timesteps (indices into `timesteps`) and the first n_draws draws."""
        ti = list(range(len(self.timesteps))) if t_index is None else list(t_index)
        r = self.scores.shape[2] if n_draws is None else int(n_draws)
        return self.scores[:, ti, :r].mean(axis=(1, 2))

    def labels(self, t_index: Sequence[int] | None = None, n_draws: int | None = None) -> np.ndarray:
        """(N,) index of the winning attribute."""
        return self.mean_scores(t_index, n_draws).argmax(axis=1)

    def evals_for(self, t_index: Sequence[int] | None = None, n_draws: int | None = None) -> int:
        """Network evaluations per image that the chosen subset costs: (K + 1) · |t_index| · n_draws."""
        nt = len(self.timesteps) if t_index is None else len(list(t_index))
        r = self.scores.shape[2] if n_draws is None else int(n_draws)
        return self.n_conditions * nt * r


def score_decomp(model, x0: torch.Tensor, image_seeds: Sequence[int], attributes: Sequence[str], base: str = "",
                 timesteps: Sequence[int] = (100,), n_draws: int = 1, variants: Sequence[str] = ("simplex",),
                 space: str = "eps", chunk: int | None = None, progress: bool = False) -> dict[str, DecompResult]:
    """Run ScoreDecomp for every variant on the same network evaluations.

    model: a ScoreModel; x0: (N, ...) encoded images (model.encode); image_seeds: (N,) ints (noise seeds);
    attributes: K ≥ 2 condition names; base: the base condition ("" = null). Returns {variant: DecompResult}.
    The model's `evals` counter grows by exactly N · (K + 1) · len(timesteps) · n_draws.
    """
    variants = check_variants(variants)
    if len(attributes) < 2:
        raise ConfigError(f"ScoreDecomp needs at least 2 attributes; got {list(attributes)}")
    if n_draws < 1 or not timesteps:
        raise ConfigError(f"ScoreDecomp needs timesteps and n_draws ≥ 1; got {list(timesteps)} and {n_draws}")
    cond_names = [base, *attributes]
    ids = model.condition_ids(cond_names) if hasattr(model, "condition_ids") else [model.condition_id(c) for c in cond_names]
    n, k = x0.shape[0], len(attributes)
    scores = {v: np.zeros((n, len(timesteps), n_draws, k)) for v in variants}
    chunk = chunk or max(1, getattr(model, "batch_size", 64) // len(cond_names))
    total = -(-n // chunk) * len(timesteps) * n_draws
    start_evals = model.evals
    for rows, ti, t, r, x_t, _ in tqdm(iter_noised(model, x0, image_seeds, timesteps, n_draws, chunk), total=total,
                                       disable=not progress, desc="scoredecomp"):
        out = model.predict_conditions(x_t, torch.full((x_t.shape[0],), t), ids, space=space)
        flat = out.reshape(out.shape[0], out.shape[1], -1).cpu().numpy()
        for v in variants:
            scores[v][rows, ti, r] = decompose(flat[0], flat[1:], v)
    used = model.evals - start_evals
    expected = n * len(cond_names) * len(timesteps) * n_draws
    if used != expected:
        raise RuntimeError(f"ScoreDecomp used {used} evaluations, expected {expected}")
    return {
        v: DecompResult(variant=v, attributes=list(attributes), base=base, timesteps=[int(t) for t in timesteps],
                        scores=scores[v], evals_per_image=expected // max(n, 1), n_conditions=len(cond_names))
        for v in variants
    }
