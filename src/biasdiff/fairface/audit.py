"""ScoreDecomp (and the ELBO diffusion-classifier baseline) on FairFace, with any `biasdiff.scoredecomp.ScoreModel`.

Protocol (seed: 226diffusion statistical_auditing/fairface.py — SD 2.1, t = 5, base "photo of a person's face",
attributes "photo of a person's face, man" / "..., woman", 250 images): for each task (gender; race when race
prompts are configured) each sampled image is noised once per (timestep, draw) with noise shared by every condition;
ScoreDecomp solves the simplex least squares of the base score on the attribute scores (weights = proportions,
argmax = label) and the ELBO baseline picks the class with the lowest denoising error over evenly spaced timesteps.

Accuracy is computed only over images that carry the task's label (FairFace rows always do; the procedural
fixture has gender labels and no race labels, so its race rows report n = 0 rather than a made-up accuracy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from biasdiff.errors import ConfigError  # noqa: E402
from biasdiff.fairface.labels import CANONICAL  # noqa: E402
from biasdiff.fairface.load import FairFaceSet, image_id  # noqa: E402
from biasdiff.fairface.metrics import accuracy_table, confusion_table  # noqa: E402
from biasdiff.fairface.sample import stratified_sample  # noqa: E402
from biasdiff.seeds import derive_seed  # noqa: E402

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSpec:
    """One classification task: `classes` are FairFace names (canonical), `prompts` the condition of each class."""

    name: str
    classes: tuple[str, ...]
    prompts: tuple[str, ...]


def task_specs(prompts: Mapping) -> list[TaskSpec]:
    """Tasks from the config's `fairface.prompts` (gender: {Male: ..., Female: ...}, race: {...} or null)."""
    specs = []
    for task in ("gender", "race"):
        mapping = prompts.get(task)
        if not mapping:
            continue
        bad = sorted(set(mapping) - set(CANONICAL[task]))
        if bad:
            raise ConfigError(f"config key fairface.prompts.{task}: class(es) {bad} unknown; valid: {list(CANONICAL[task])}")
        if len(mapping) < 2:
            raise ConfigError(f"config key fairface.prompts.{task}: needs at least 2 classes, got {sorted(mapping)}")
        classes = tuple(c for c in CANONICAL[task] if c in mapping)
        specs.append(TaskSpec(task, classes, tuple(str(mapping[c]) for c in classes)))
    if not specs:
        raise ConfigError("config key fairface.prompts: give at least the gender prompts")
    return specs


def noise_seed(seed: int, file: str) -> int:
    """Seed of one image's noise draws: from its layout-independent id (`load.image_id`), so the same image gets the
    same noise, and the same predictions, from the official CSV layout and from the Hugging Face Parquet layout."""
    return derive_seed(seed, "fairface", image_id(file))


def prepare_images(images: Sequence[Image.Image], size: int) -> np.ndarray:
    """Resize (Lanczos) to size x size and stack: uint8 (N, size, size, 3)."""
    return np.stack([np.asarray(img.convert("RGB").resize((size, size), Image.LANCZOS)) for img in images])


def run_audit(
    dataset: FairFaceSet, model, tasks: Sequence[TaskSpec], base: str, *, num_data: int, seed: int, image_size: int,
    timesteps: Sequence[int], n_draws: int = 1, elbo: Mapping | None = None, batch: int = 64,
) -> pd.DataFrame:
    """Predictions, one row per (image, task, method).

    Columns: file, image_id (`load.image_id`, the same in both layouts), gender, race (the image's true labels),
    task, method ("scoredecomp" / "elbo"), true, pred, weights (list of float, per class, ScoreDecomp's simplex
    weights or ELBO's negative errors), classes (list of str), evals (network evaluations per image for this task and
    method). Each image's noise is seeded from (seed, its image_id): identical predictions from either layout.
    """
    positions = stratified_sample(dataset.labels, num_data, seed)
    labels = dataset.labels.iloc[positions].reset_index(drop=True)
    log.info("FairFace %s/%s (%s, padding %s): %d of %d images sampled", dataset.root, dataset.split, dataset.layout,
             dataset.padding, len(labels), len(dataset))
    from biasdiff.scores import elbo_classify, score_decomp

    seeds = [noise_seed(seed, f) for f in labels["file"]]
    rows = []
    for start in range(0, len(labels), batch):
        part = labels.iloc[start : start + batch]
        arr = prepare_images(dataset.load_images(positions[start : start + batch]), image_size)
        x0 = model.encode(arr)
        part_seeds = seeds[start : start + batch]
        for task in tasks:
            dec = score_decomp(model, x0, part_seeds, list(task.prompts), base=base, timesteps=list(timesteps),
                               n_draws=n_draws, variants=["simplex"])["simplex"]
            weights = dec.mean_scores()
            results = [("scoredecomp", weights, dec.evals_for())]
            if elbo and elbo.get("enabled", True):
                res = elbo_classify(model, x0, part_seeds, list(task.prompts), stages=[(int(elbo["n_timesteps"]), 1)],
                                    n_trials=int(elbo.get("n_trials", 1)))
                results.append(("elbo", -res.errors, res.evals))
            for method, scores, evals in results:
                pred = np.asarray(scores).argmax(axis=1)
                ev = np.broadcast_to(np.asarray(evals), (len(part),))
                for i, row in enumerate(part.itertuples(index=False)):
                    rows.append(
                        {"file": row.file, "image_id": image_id(row.file), "gender": row.gender, "race": row.race,
                         "task": task.name, "method": method, "true": getattr(row, task.name),
                         "pred": task.classes[int(pred[i])],
                         "weights": [float(w) for w in scores[i]], "classes": list(task.classes), "evals": int(ev[i])}
                    )
        log.info("FairFace audit: %d/%d images", min(start + batch, len(labels)), len(labels))
    return pd.DataFrame(rows)


def accuracy_figure(accuracy: pd.DataFrame):
    """Bar chart of accuracy with 95% Wilson intervals: one panel per (task, group_by), bars per method."""
    panels = [(t, g) for t, g in accuracy[["task", "group_by"]].drop_duplicates().itertuples(index=False)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 1, 3.6), squeeze=False)
    for ax, (task, group_by) in zip(axes[0], panels):
        sub = accuracy[(accuracy["task"] == task) & (accuracy["group_by"] == group_by)]
        groups = list(dict.fromkeys(sub["group"]))
        methods = list(dict.fromkeys(sub["method"]))
        width = 0.8 / max(len(methods), 1)
        for j, method in enumerate(methods):
            m = sub[sub["method"] == method].set_index("group").reindex(groups)
            xs = np.arange(len(groups)) + j * width
            acc = m["accuracy"].to_numpy(dtype=float)
            err = np.vstack([acc - m["ci_low"].to_numpy(dtype=float), m["ci_high"].to_numpy(dtype=float) - acc])
            ax.bar(xs, np.nan_to_num(acc), width, yerr=np.nan_to_num(err), capsize=2, label=method)
            for x, n in zip(xs, m["n"]):
                if n == 0:
                    ax.text(x, 0.02, "no labels", rotation=90, fontsize=7, ha="center", va="bottom")
        ax.axhline(1 / max(len(CANONICAL.get(task, (0, 0))), 2) if task == "race" else 0.5, color="gray", ls=":", lw=1)
        ax.set_xticks(np.arange(len(groups)) + width * (len(methods) - 1) / 2)
        ax.set_xticklabels(groups, rotation=45, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(f"{task} accuracy, {group_by}", fontsize=9)
    axes[0][0].set_ylabel("accuracy (95% Wilson CI)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def summarise(predictions: pd.DataFrame, tasks: Sequence[TaskSpec]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accuracy table, confusion table) of a predictions frame."""
    return accuracy_table(predictions), confusion_table(predictions, {t.name: t.classes for t in tasks})
