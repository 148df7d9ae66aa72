"""How well the audit's instrument reads gender in each context of the synthetic world, on images that look like
samples and whose gender is known.

Two stage entry points, both on the manifest's held-out images (`split`, default val: never trained on by the DDPM;
the classifier's val half only chose its stopping epoch, its test half was never seen), grouped into cells
(occupation context × gender):

- `run_detectability`: the classifier's gender accuracy per cell along two degradation ladders, `blur_noise`
  (level 0 → 1) and `diffusion_x0` (forward diffusion to t, then the model's one-step x̂0 under the null condition).
  A fair synthetic world has the same curve in every context.
- `run_sdedit`: SDEdit the images with the trained model conditioned on their context's word (`context_words`) at
  several strengths and classify them: per context and strength the classifier's sensitivity (female read female)
  and specificity (male read male). The sample audit corrects P(female) with the rates at `correction_strength`
  (Rogan–Gladen; `biasdiff.misclassification`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from biasdiff.audit.classifier import AttributeClassifier
from biasdiff.audit.degrade import blur_noise, diffusion_x0, sdedit
from biasdiff.errors import DataError
from biasdiff.seeds import derive_seed
from biasdiff.stats import wilson_interval

log = logging.getLogger(__name__)

DETECTABILITY_COLUMNS = ["context", "gender", "kind", "level", "n", "n_correct", "accuracy", "ci_low", "ci_high"]
SDEDIT_COLUMNS = ["context", "gender", "word", "strength", "n", "n_female", "frac_female", "rate", "rate_name",
                  "ci_low", "ci_high"]


def held_out_cells(manifest: str | os.PathLike, images: str | os.PathLike, split: str, per_cell: int | None,
                   seed: int) -> pd.DataFrame:
    """The held-out images: a frame (context, gender, key, pixels) in a stable order, at most `per_cell` per
    (context, gender) cell (a seeded choice; None = all)."""
    from biasdiff.artifacts.manifest import load_images

    table, array = load_images(manifest, images, split=split,
                               columns=("array_index", "prompt", "index", "split", "gender", "occupation"))
    if table.empty:
        raise DataError(f"{manifest} has no {split!r} images to measure the instrument on; raise "
                        "manifest.val_fraction or the prompt counts")
    table = table.assign(key=table["prompt"].astype(str) + "/" + table["index"].astype(str),
                         context=table["occupation"].astype(str), gender=table["gender"].astype(str))
    table["order"] = [derive_seed(seed, "readout", k) for k in table["key"]]
    table = table.sort_values(["context", "gender", "order"])
    if per_cell:
        table = table.groupby(["context", "gender"], sort=False).head(int(per_cell))
    table = table.reset_index(drop=True)
    table["pixels"] = list(np.asarray(array[table["array_index"].to_numpy()]))
    return table[["context", "gender", "key", "pixels"]]


def _female(classifier: AttributeClassifier, pixels: np.ndarray, batch_size: int) -> np.ndarray:
    """Boolean (N,): the classifier (members' mean probability) reads the image as female."""
    return classifier.predict(pixels, batch_size=batch_size)["gender"] == "female"


def _cell_rows(cells: pd.DataFrame, female: np.ndarray, extra: Mapping[str, Any]) -> list[dict]:
    rows = []
    for (context, gender), idx in cells.groupby(["context", "gender"], sort=False).groups.items():
        said_female = female[np.asarray(idx)]
        n = int(len(said_female))
        correct = int(said_female.sum()) if gender == "female" else int((~said_female).sum())
        lo, hi = wilson_interval(correct, n)
        rows.append({"context": context, "gender": gender, **extra, "n": n, "n_correct": correct,
                     "accuracy": correct / n, "ci_low": lo, "ci_high": hi})
    return rows


def detectability_table(cells: pd.DataFrame, classifier: AttributeClassifier, settings: Mapping[str, Any], *,
                        model=None, scheduler=None, null_cond: np.ndarray | None = None, amp=None, device="cpu"
                        ) -> pd.DataFrame:
    """Gender accuracy per (context, gender) cell at every rung of the ladders in `settings` (blur_noise levels
    with max_blur/max_noise; diffusion_t steps, which need `model`, `scheduler` and the null condition)."""
    pixels = np.stack(cells["pixels"].to_list())
    seed, batch = int(settings["seed"]), int(settings["batch_size"])
    rows: list[dict] = []
    bn = settings["blur_noise"]
    for level in bn["levels"]:
        seeds = [derive_seed(seed, "blur_noise", level, k) for k in cells["key"]]
        degraded = blur_noise(pixels, float(level), seeds, float(bn["max_blur"]), float(bn["max_noise"]))
        rows += _cell_rows(cells, _female(classifier, degraded, batch), {"kind": "blur_noise", "level": float(level)})
    if model is not None:
        for t in settings["diffusion_t"]:
            seeds = [derive_seed(seed, "diffusion_x0", t, k) for k in cells["key"]]
            degraded = diffusion_x0(model, scheduler, pixels, int(t), null_cond, seeds, batch_size=batch, amp=amp,
                                    device=device)
            rows += _cell_rows(cells, _female(classifier, degraded, batch), {"kind": "diffusion_x0", "level": float(t)})
    for r in rows:
        log.info("%-12s %-6s %-12s %6g  accuracy %.3f (n=%d)", r["context"], r["gender"], r["kind"], r["level"],
                 r["accuracy"], r["n"])
    return pd.DataFrame(rows, columns=DETECTABILITY_COLUMNS)


def sdedit_table(cells: pd.DataFrame, classifier: AttributeClassifier, model, scheduler,
                 context_vectors: Mapping[str, np.ndarray], context_words: Mapping[str, str],
                 settings: Mapping[str, Any], sampling: Mapping[str, Any], *, amp=None, device="cpu"
                 ) -> tuple[pd.DataFrame, dict[float, np.ndarray]]:
    """Per (context, gender, strength): how many SDEdited images the classifier reads as female, and the rate that
    makes: sensitivity for female cells, specificity (share read male) for male cells, with Wilson intervals.
    Returns (table, {strength: SDEdited uint8 images in `cells` order}) (the images for the example grid)."""
    pixels = np.stack(cells["pixels"].to_list())
    seed, batch = int(settings["seed"]), int(settings["batch_size"])
    missing = sorted(set(cells["context"]) - set(context_words))
    if missing:
        raise DataError(f"held-out images of context(s) {missing} have no word in audit.readout.context_words "
                        f"(has {sorted(context_words)})")
    rows, edited = [], {}
    for strength in settings["sdedit"]["strengths"]:
        out = np.empty_like(pixels)
        for context, idx in cells.groupby("context", sort=False).groups.items():
            idx = np.asarray(idx)
            seeds = [derive_seed(seed, "sdedit", strength, k) for k in cells["key"].to_numpy()[idx]]
            out[idx] = sdedit(model, scheduler, pixels[idx], float(strength), context_vectors[context], seeds,
                              sampler=sampling["sampler"], steps=int(sampling["steps"]), eta=float(sampling["eta"]),
                              guidance_scale=float(sampling["guidance_scale"]), batch_size=batch, amp=amp,
                              device=device)
        edited[float(strength)] = out
        female = _female(classifier, out, batch)
        for (context, gender), idx in cells.groupby(["context", "gender"], sort=False).groups.items():
            k, n = int(female[np.asarray(idx)].sum()), len(idx)
            right = k if gender == "female" else n - k
            lo, hi = wilson_interval(right, n)
            rows.append({"context": context, "gender": gender, "word": context_words[context],
                         "strength": float(strength), "n": n, "n_female": k, "frac_female": k / n,
                         "rate": right / n, "rate_name": "sensitivity" if gender == "female" else "specificity",
                         "ci_low": lo, "ci_high": hi})
            log.info("SDEdit %.2f %-12s %-6s (word %s): %s %.3f (n=%d)", strength, context, gender,
                     context_words[context], rows[-1]["rate_name"], right / n, n)
    return pd.DataFrame(rows, columns=SDEDIT_COLUMNS), edited


def detectability_figure(table: pd.DataFrame):
    """One panel per ladder: gender accuracy vs rung, one line per (context, gender) cell with its Wilson band."""
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(table["kind"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.2 * len(kinds), 3.8), squeeze=False)
    colours = dict(zip(sorted(table["context"].unique()), plt.get_cmap("tab10").colors))
    xlabel = {"blur_noise": "blur + noise level", "diffusion_x0": "diffusion step t (one-step x̂0, null condition)"}
    for ax, kind in zip(axes[0], kinds):
        part = table[table["kind"] == kind]
        for (context, gender), rows in part.groupby(["context", "gender"]):
            rows = rows.sort_values("level")
            style = "-" if gender == "female" else "--"
            ax.plot(rows["level"], rows["accuracy"], style, marker="o", ms=3, color=colours[context],
                    label=f"{context} {gender}")
            ax.fill_between(rows["level"], rows["ci_low"], rows["ci_high"], color=colours[context], alpha=0.08)
        ax.set(xlabel=xlabel.get(kind, kind), ylabel="classifier gender accuracy", ylim=(0, 1.02), title=kind)
        ax.axhline(0.5, color="grey", lw=0.6)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def sdedit_figure(cells: pd.DataFrame, edited: Mapping[float, np.ndarray], per_cell: int = 4):
    """Examples: per (context, gender) cell `per_cell` held-out images (first column block) and their SDEdits at
    each strength (next blocks), one row per cell."""
    import matplotlib.pyplot as plt

    from biasdiff.grid import image_grid

    groups = list(cells.groupby(["context", "gender"], sort=False).groups.items())
    strengths = sorted(edited)
    pixels = np.stack(cells["pixels"].to_list())
    panel = 0.8 * per_cell  # inches per block of `per_cell` images side by side
    fig, axes = plt.subplots(len(groups), 1 + len(strengths), figsize=(panel * (1 + len(strengths)),
                                                                       (panel / per_cell + 0.25) * len(groups) + 0.4),
                             squeeze=False)
    for r, ((context, gender), idx) in enumerate(groups):
        idx = np.asarray(idx)[:per_cell]
        for c, (title, source) in enumerate([("held-out", pixels)] + [(f"SDEdit {s:g}", edited[s]) for s in strengths]):
            ax = axes[r][c]
            ax.imshow(image_grid(source[idx], cols=per_cell, min_cell=32))
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{context}\n{gender}", fontsize=8)
    fig.tight_layout()
    return fig


def _classifier(classifier_dir, classifier_metrics) -> AttributeClassifier:
    """The classifier, whatever its held-out accuracy (the readout measures it; the audits refuse a poor one)."""
    if not Path(classifier_metrics).is_file():
        raise DataError(f"{classifier_metrics} does not exist; it is made by the rule train_attribute_classifier")
    return AttributeClassifier.load(classifier_dir)


def _model(model_dir, settings: Mapping[str, Any], use_ema: bool):
    from biasdiff.devices import forward_precision, resolve_device, resolve_dtype
    from biasdiff.model.unet import load_model_dir

    device = resolve_device(settings["device"])
    dtype = resolve_dtype("auto", device)
    model, scheduler = load_model_dir(model_dir, ema=use_ema, device=device, dtype=dtype)
    amp = forward_precision(settings["precision"], device, dtype, "audit.readout.precision")
    return model, scheduler, amp, device


def run_detectability(*, manifest, images, classifier_dir, classifier_metrics, model_dir, conditioning,
                      outputs: Mapping[str, str | os.PathLike], settings: Mapping[str, Any]) -> pd.DataFrame:
    """Stage entry point (rule readout_detectability). outputs: table (.parquet), curves (.png)."""
    import matplotlib.pyplot as plt

    from biasdiff.artifacts.conditioning import NULL_WORD, condition_vector, load_conditioning
    from biasdiff.io import all_or_nothing, save_figure, write_parquet

    classifier = _classifier(classifier_dir, classifier_metrics)
    cells = held_out_cells(manifest, images, settings["split"], settings["per_cell"], int(settings["seed"]))
    model, scheduler, amp, device = _model(model_dir, settings, bool(settings["sampling"]["use_ema"]))
    null = condition_vector(load_conditioning(conditioning), NULL_WORD)
    table = detectability_table(cells, classifier, settings, model=model, scheduler=scheduler, null_cond=null,
                                amp=amp, device=device)
    fig = detectability_figure(table)
    try:
        with all_or_nothing([outputs["table"], outputs["curves"]]):
            write_parquet(table, outputs["table"])
            save_figure(fig, outputs["curves"])
    finally:
        plt.close(fig)
    return table


def run_sdedit(*, manifest, images, classifier_dir, classifier_metrics, model_dir, conditioning,
               outputs: Mapping[str, str | os.PathLike], settings: Mapping[str, Any]) -> pd.DataFrame:
    """Stage entry point (rule readout_sdedit). outputs: table (.parquet), rates (.csv), examples (.png).
    settings: the audit.readout slice plus `sampling` (the sample section: sampler, steps, eta, guidance_scale,
    use_ema)."""
    import matplotlib.pyplot as plt

    from biasdiff.artifacts.conditioning import condition_vector, load_conditioning
    from biasdiff.io import all_or_nothing, atomic_path, save_figure, write_parquet

    classifier = _classifier(classifier_dir, classifier_metrics)
    cells = held_out_cells(manifest, images, settings["split"], settings["per_cell"], int(settings["seed"]))
    sampling = settings["sampling"]
    model, scheduler, amp, device = _model(model_dir, settings, bool(sampling["use_ema"]))
    vectors = load_conditioning(conditioning)
    words = dict(settings["context_words"])
    context_vectors = {c: condition_vector(vectors, w) for c, w in words.items()}
    table, edited = sdedit_table(cells, classifier, model, scheduler, context_vectors, words, settings, sampling,
                                 amp=amp, device=device)
    fig = sdedit_figure(cells, edited)
    try:
        with all_or_nothing([outputs["table"], outputs["rates"], outputs["examples"]]):
            write_parquet(table, outputs["table"])
            with atomic_path(outputs["rates"]) as tmp:
                table.to_csv(tmp, index=False, float_format="%.4f")
            save_figure(fig, outputs["examples"])
    finally:
        plt.close(fig)
    return table
