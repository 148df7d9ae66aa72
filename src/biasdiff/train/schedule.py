"""Which images and words each optimizer step trains on, and classifier-free-guidance dropout.

Every image is trained with each word of its prompt's configured list (male_nurse -> man, nurse, person;
man -> man, person, man; repeats count). Two modes:

- `per_word_steps` (default, what the seed meant): the train split is shuffled each epoch and cut into batches;
  every batch gives one optimizer step per word slot (slot 0, then 1, then 2), each with fresh t and noise. The
  seed overwrote its label tensor inside that loop and so trained the wrong words; here the words of every slot
  are looked up from the image's own list, never from the previous slot's labels.
- `shuffled_pairs`: all (image, slot) pairs of the split are shuffled each epoch and cut into batches.

A schedule is a pure function of (seed, step): `batch(step)` is the same in every process and after a resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from biasdiff.errors import ConfigError
from biasdiff.seeds import rng_for

MODES = ("per_word_steps", "shuffled_pairs")


@dataclass(frozen=True)
class StepBatch:
    """One optimizer step's examples: `rows` (B,) positions into the image table, `words` (B,) their words."""

    rows: np.ndarray
    words: tuple[str, ...]


class WordSchedule:
    """The (image, word) examples of every optimizer step.

    `words_per_row[i]` is the word list of image row i (e.g. the `words` column of the train split). Steps are
    numbered from 0 across epochs; `steps_per_epoch` optimizer steps make one epoch.
    """

    def __init__(self, words_per_row: Sequence[Sequence[str]], batch_size: int, mode: str = "per_word_steps",
                 seed: int = 0):
        if mode not in MODES:
            raise ConfigError(f"config key train.word_schedule: {mode!r} is not one of {list(MODES)}")
        if batch_size < 1:
            raise ConfigError(f"config key train.batch_size: {batch_size} must be >= 1")
        if len(words_per_row) == 0:
            raise ConfigError("the train split is empty: no images to train on (check manifest.val_fraction)")
        self.words_per_row = [tuple(w) for w in words_per_row]
        for i, words in enumerate(self.words_per_row):
            if not words:
                raise ConfigError(f"image row {i} has no conditioning words; every prompt needs words")
        self.batch_size = int(batch_size)
        self.mode = mode
        self.seed = int(seed)
        self._cache: tuple[int, list[StepBatch]] | None = None
        self.steps_per_epoch = len(self._epoch_plan(0))

    def _epoch_plan(self, epoch: int) -> list[StepBatch]:
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = rng_for(self.seed, "word-schedule", self.mode, epoch)
        n = len(self.words_per_row)
        plan: list[StepBatch] = []
        if self.mode == "per_word_steps":
            order = rng.permutation(n)
            for start in range(0, n, self.batch_size):
                batch = order[start : start + self.batch_size]
                n_slots = max(len(self.words_per_row[i]) for i in batch)
                for slot in range(n_slots):
                    rows = np.array([i for i in batch if len(self.words_per_row[i]) > slot], dtype=np.int64)
                    plan.append(StepBatch(rows, tuple(self.words_per_row[i][slot] for i in rows)))
        else:
            pairs = np.array([(i, s) for i in range(n) for s in range(len(self.words_per_row[i]))], dtype=np.int64)
            pairs = pairs[rng.permutation(len(pairs))]
            for start in range(0, len(pairs), self.batch_size):
                chunk = pairs[start : start + self.batch_size]
                plan.append(StepBatch(chunk[:, 0].copy(), tuple(self.words_per_row[i][s] for i, s in chunk)))
        self._cache = (epoch, plan)
        return plan

    def batch(self, step: int) -> StepBatch:
        """The examples of optimizer step `step` (0-based, counting across epochs)."""
        epoch, pos = divmod(int(step), self.steps_per_epoch)
        return self._epoch_plan(epoch)[pos]


def step_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The torch Generator for one step's timesteps, noise and dropout (a function of seed and step only)."""
    from biasdiff.seeds import derive_seed

    return torch.Generator(device=device).manual_seed(derive_seed(seed, "train-step", step))


def uncond_mask(n: int, p_uncond: float, generator: torch.Generator) -> torch.Tensor:
    """(n,) bool: which examples drop their word (get the zero vector) for classifier-free guidance."""
    if not 0.0 <= p_uncond < 1.0:
        raise ConfigError(f"config key train.p_uncond: {p_uncond} must be in [0, 1)")
    return torch.rand(n, generator=generator, device=generator.device) < p_uncond


def apply_uncond(cond: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """cond (B, D) with the rows where `mask` (B,) is True replaced by the null condition (zeros)."""
    return cond * (~mask).to(cond.dtype)[:, None]
