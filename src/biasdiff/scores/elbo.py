"""The diffusion-classifier baseline (Li et al. 2023, "Your Diffusion Model is Secretly a Zero-Shot Classifier").

For each class c the Monte-Carlo ELBO proxy is the mean over evenly spaced timesteps t (and `n_trials` noise draws
per t, shared by every class) of mean((f(x_t, t, c) − target)²), where f is the network's raw output and target the
true ε or v (per the scheduler's `prediction_type`). The lowest error wins.

Adaptive pruning (their Sec. 3.2): stages [(n_t_1, keep_1), (n_t_2, keep_2), ...]; stage j evaluates the evenly
spaced grid of n_t_j timesteps (skipping timesteps already evaluated) for the classes still in the race, averages
every error evaluated so far and keeps the `keep_j` lowest. Network evaluations are counted per image, exactly, and
checked against the model's own counter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from biasdiff.errors import ConfigError
from biasdiff.scores.noise import shared_noise

log = logging.getLogger(__name__)


def even_timesteps(n: int, num_train_timesteps: int) -> list[int]:
    """n evenly spaced timesteps over [0, T): start = T // n // 2, stride T // n (Li et al.'s grid)."""
    if not 1 <= n <= num_train_timesteps:
        raise ConfigError(f"ELBO budget of {n} timesteps must be between 1 and {num_train_timesteps}")
    stride = num_train_timesteps // n
    return list(range(stride // 2, num_train_timesteps, stride))[:n]


@dataclass
class ElboResult:
    """errors (N, K): mean squared error per class over the timesteps it was evaluated at (a pruned class: those of
    the stages it took part in); labels (N,): winning class index; evals (N,): exact network evaluations per image."""

    classes: list[str]
    stages: list[tuple[int, int]]
    n_trials: int
    errors: np.ndarray
    labels: np.ndarray
    evals: np.ndarray


def elbo_classify(model, x0: torch.Tensor, image_seeds: Sequence[int], classes: Sequence[str],
                  stages: Sequence[tuple[int, int]], n_trials: int = 1, chunk: int | None = None,
                  progress: bool = False) -> ElboResult:
    """Classify each image by the lowest Monte-Carlo denoising error among `classes` (condition names).

    x0: (N, ...) encoded images; image_seeds: (N,) (noise shared with ScoreDecomp at equal (t, draw));
    stages: [(n_timesteps, keep), ...] with the last keep = 1; a single stage [(n, 1)] is the unpruned classifier.
    """
    stages = [(int(n), int(keep)) for n, keep in stages]
    if not stages or stages[-1][1] != 1:
        raise ConfigError(f"ELBO stages {stages} must be non-empty and end with keep = 1")
    if any(b[1] > a[1] for a, b in zip(stages, stages[1:])) or any(b[0] < a[0] for a, b in zip(stages, stages[1:])):
        raise ConfigError(f"ELBO stages {stages}: timesteps must not decrease and keep must not increase")
    if n_trials < 1 or len(classes) < 2:
        raise ConfigError(f"ELBO needs n_trials ≥ 1 and ≥ 2 classes; got {n_trials} and {list(classes)}")
    ids = np.array([model.condition_id(c) for c in classes])
    n, k = x0.shape[0], len(classes)
    chunk = chunk or max(1, getattr(model, "batch_size", 64) // k)
    err_sum = np.zeros((n, k))
    err_cnt = np.zeros((n, k))
    alive = np.ones((n, k), dtype=bool)
    evals = np.zeros(n, dtype=np.int64)
    done: set[int] = set()
    seeds = np.asarray(image_seeds, dtype=np.int64)
    start_evals = model.evals
    for n_t, keep in stages:
        new_ts = [t for t in even_timesteps(n_t, model.num_train_timesteps) if t not in done]
        done.update(new_ts)
        for start in tqdm(range(0, n, chunk), disable=not progress, desc=f"elbo stage {n_t}"):
            rows = np.arange(start, min(start + chunk, n))
            x = x0[rows]
            img, cls = np.nonzero(alive[rows])  # flat (image-in-chunk, class) pairs still racing
            for t in new_ts:
                for r in range(n_trials):
                    noise = shared_noise(seeds[rows], t, r, x.shape[1:]).to(x.device)
                    tt = torch.full((x.shape[0],), t, dtype=torch.long)
                    x_t = model.add_noise(x, noise, tt)
                    target = model.target(x, noise, tt)
                    sel = torch.as_tensor(img)
                    out = model.predict(x_t[sel], torch.full((len(img),), t, dtype=torch.long),
                                        torch.as_tensor(ids[cls]))
                    err = ((out - target[sel].to(out.device).float()) ** 2).flatten(1).mean(dim=1).cpu().numpy()
                    np.add.at(err_sum, (rows[img], cls), err)
                    np.add.at(err_cnt, (rows[img], cls), 1)
                    np.add.at(evals, rows[img], 1)
        mean_err = np.where(alive, err_sum / np.maximum(err_cnt, 1), np.inf)
        order = np.argsort(mean_err, axis=1, kind="stable")
        keep_mask = np.zeros_like(alive)
        np.put_along_axis(keep_mask, order[:, :keep], True, axis=1)
        alive &= keep_mask
    if model.evals - start_evals != int(evals.sum()):
        raise RuntimeError(f"ELBO counted {int(evals.sum())} evaluations but the model ran {model.evals - start_evals}")
    errors = np.where(err_cnt > 0, err_sum / np.maximum(err_cnt, 1), np.nan)
    labels = alive.argmax(axis=1)
    return ElboResult(classes=list(classes), stages=stages, n_trials=n_trials, errors=errors, labels=labels,
                      evals=evals)
