"""Stage entry points of the own-model score audits (one per workflow rule; each writes its artifacts atomically).

Each `run_<rule>(model_dir, conditioning, ..., outputs, settings)`: `settings` is the validated `scoredecomp:` config
section (biasdiff/schemas/scoredecomp.schema.yaml), `outputs` the rule's outputs by name. Gender labels map to
conditions through `settings["gender_words"]` ({male: man, female: woman}); the first is attribute 0, the second 1.

- run_scoredecomp_accuracy: ScoreDecomp (every variant; single timesteps with 1 and all draws, and all timesteps) and
  the ELBO classifier (each budget, and the pruned schedule if given) on held-out labeled images →
  scoredecomp_accuracy.parquet (method, variant, timesteps, n_draws, evals_per_image, accuracy, n), per-image
  predictions, and accuracy against evaluations per image.
- run_scoredecomp_samples: ScoreDecomp proportions of each word's samples, beside the attribute-classifier audit.
- run_score_bias: score-space female weight per word and t on real images.
- run_score_similarity: cosine between conditions per t, and across t per condition.
- run_lipschitz_diagnostic: ||ε̂(y1) − ε̂(y2)|| / ||y1 − y2|| per pair of words and t.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from biasdiff.errors import DataError
from biasdiff.io import all_or_nothing, save_figure, write_csv, write_parquet
from biasdiff.stats import wilson_interval
from biasdiff.scoredecomp.bias import plot_score_bias, score_bias_weights, summarize_score_bias
from biasdiff.scores.decomp import score_decomp
from biasdiff.scores.elbo import elbo_classify
from biasdiff.scoredecomp.lipschitz import lipschitz_ratios, plot_lipschitz, summarize_lipschitz
from biasdiff.scores.score_models import NULL, WordDDPMScore
from biasdiff.scoredecomp.similarity import (
    condition_similarity,
    plot_condition_heatmaps,
    plot_pair_curves,
    plot_timestep_heatmaps,
)
from biasdiff.seeds import derive_seed, rng_for

log = logging.getLogger(__name__)

ACCURACY_COLUMNS = ["method", "variant", "timesteps", "n_draws", "evals_per_image", "accuracy", "n"]


def load_score_model(model_dir: str | os.PathLike, conditioning_path: str | os.PathLike,
                     params: Mapping[str, Any]) -> WordDDPMScore:
    """The trained word-conditioned DDPM of `model_dir` with the embed stage's conditioning vectors."""
    from biasdiff.artifacts.conditioning import load_conditioning

    return WordDDPMScore.from_model_dir(model_dir, load_conditioning(conditioning_path), device=params["device"],
                                        dtype=params["dtype"], batch_size=params["batch_size"],
                                        ema=params["use_ema"], precision=params["precision"])


def held_out_images(manifest_path, array_path, split: str, n_images: int | None, seed: int
                    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(rows, uint8 images (N, H, W, 3), noise seeds (N,)) of up to n_images images of `split`, chosen by a
    seeded permutation (the same config picks the same images)."""
    from biasdiff.artifacts.manifest import load_images

    manifest, array = load_images(manifest_path, array_path, split=split)
    if manifest.empty:
        raise DataError(f"{manifest_path} has no {split!r} images; raise manifest.val_fraction or counts")
    order = rng_for(seed, "scoredecomp-images", split).permutation(len(manifest))
    if n_images:
        order = np.sort(order[:n_images])
    rows = manifest.iloc[order].reset_index(drop=True)
    images = np.asarray(array[rows["array_index"].to_numpy()])
    seeds = np.array([derive_seed(seed, "scoredecomp", p, int(i)) for p, i in zip(rows["prompt"], rows["index"])],
                     dtype=np.int64)
    return rows, images, seeds


def _gender_labels(rows: pd.DataFrame, gender_words: Mapping[str, str]) -> tuple[list[str], np.ndarray]:
    genders = list(gender_words)
    unknown = sorted(set(rows["gender"]) - set(genders))
    if unknown:
        raise DataError(f"images have gender labels {unknown} that scoredecomp.gender_words {dict(gender_words)} "
                        f"does not map; valid: {genders}")
    return genders, np.array([genders.index(g) for g in rows["gender"]])


def _t_label(ts: Sequence[int]) -> str:
    return ",".join(str(int(t)) for t in ts)


def classifier_accuracy(model, x0, seeds, truth: np.ndarray, params: Mapping[str, Any], progress: bool = True
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ScoreDecomp and ELBO accuracies (ACCURACY_COLUMNS) and per-image predictions, on encoded images x0."""
    attrs = list(params["gender_words"].values())
    ts, draws = list(params["timesteps"]), int(params["n_draws"])
    rows, preds = [], []
    res = score_decomp(model, x0, seeds, attrs, base=params["base"], timesteps=ts, n_draws=draws,
                       variants=params["variants"], space=params["space"], progress=progress)
    subsets = [([i], 1) for i in range(len(ts))]
    if draws > 1:
        subsets += [([i], draws) for i in range(len(ts))]
    if len(ts) > 1:
        subsets += [(list(range(len(ts))), 1)] + ([(list(range(len(ts))), draws)] if draws > 1 else [])
    for variant, result in res.items():
        for t_index, r in subsets:
            scores = result.mean_scores(t_index, r)
            label = scores.argmax(axis=1)
            tl = _t_label([ts[i] for i in t_index])
            rows.append({"method": "scoredecomp", "variant": variant, "timesteps": tl, "n_draws": r,
                         "evals_per_image": float(result.evals_for(t_index, r)),
                         "accuracy": float((label == truth).mean()), "n": int(len(truth))})
            preds.append(pd.DataFrame({"image": np.arange(len(truth)), "method": "scoredecomp", "variant": variant,
                                       "timesteps": tl, "n_draws": r, "label": label, "truth": truth,
                                       "score_0": scores[:, 0], "score_1": scores[:, 1]}))
    elbo = params["elbo"]
    runs = [("unpruned", [(int(b), 1)]) for b in elbo["budgets"]]
    if elbo["stages"]:
        runs.append(("pruned", [tuple(s) for s in elbo["stages"]]))
    for variant, stages in runs:
        out = elbo_classify(model, x0, seeds, attrs, stages=stages, n_trials=int(elbo["n_trials"]), progress=progress)
        tl = "+".join(f"{n}" for n, _ in stages)
        rows.append({"method": "elbo", "variant": variant, "timesteps": f"even:{tl}", "n_draws": int(elbo["n_trials"]),
                     "evals_per_image": float(out.evals.mean()), "accuracy": float((out.labels == truth).mean()),
                     "n": int(len(truth))})
        preds.append(pd.DataFrame({"image": np.arange(len(truth)), "method": "elbo", "variant": variant,
                                   "timesteps": f"even:{tl}", "n_draws": int(elbo["n_trials"]), "label": out.labels,
                                   "truth": truth, "score_0": -out.errors[:, 0], "score_1": -out.errors[:, 1]}))
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS), pd.concat(preds, ignore_index=True)


def plot_accuracy_vs_evals(table: pd.DataFrame):
    """Accuracy against network evaluations per image (log x), one series per method/variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (method, variant), grp in table.groupby(["method", "variant"], sort=False):
        grp = grp.sort_values("evals_per_image")
        ax.plot(grp["evals_per_image"], grp["accuracy"], marker="o" if method == "elbo" else ".",
                ls="-" if method == "elbo" else "none", label=f"{method}: {variant}")
    ax.set_xscale("log")
    ax.set_xlabel("network evaluations per image")
    ax.set_ylabel("gender accuracy (held-out)")
    ax.set_ylim(0, 1.02)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.legend(fontsize=7)
    ax.set_title("ScoreDecomp vs diffusion-classifier ELBO")
    return fig


def run_scoredecomp_accuracy(model_dir: str | os.PathLike, conditioning: str, manifest: str, images: str,
                             outputs: Mapping[str, str], settings: Mapping[str, Any]) -> pd.DataFrame:
    """Rule scoredecomp_accuracy: gender accuracy of ScoreDecomp and the ELBO classifier on held-out images.
    outputs: accuracy, predictions, figure."""
    params = settings
    model = load_score_model(model_dir, conditioning, params)
    rows, imgs, seeds = held_out_images(manifest, images, params["split"], params["n_images"], params["seed"])
    _, truth = _gender_labels(rows, params["gender_words"])
    log.info("classifier audit on %d %s images (%s)", len(rows), params["split"], dict(rows["gender"].value_counts()))
    table, preds = classifier_accuracy(model, model.encode(imgs), seeds, truth, params)
    preds = preds.merge(rows[["array_index", "prompt", "index", "gender"]].rename_axis("image").reset_index(), on="image")
    write_parquet(table, outputs["accuracy"])
    write_parquet(preds, outputs["predictions"])
    fig = plot_accuracy_vs_evals(table)
    save_figure(fig, outputs["figure"])
    log.info("accuracy table:\n%s", table.to_string(index=False))
    return table


def run_scoredecomp_samples(model_dir: str | os.PathLike, conditioning: str, sample_images: Mapping[str, str],
                            classifier_audit: str | None, outputs: Mapping[str, str], settings: Mapping[str, Any],
                            classifier_labels: str | None = None) -> pd.DataFrame:
    """Rule scoredecomp_samples: ScoreDecomp gender proportions of each word's samples (samples/{model}/{word}.npy),
    and the ELBO classifier's labels of the same samples.

    One row per word: n, female_weight (mean simplex weight on the female word = proportion of women),
    frac_female_argmax (fraction of samples labelled female) with a Wilson 95 % interval, frac_female_elbo, and, when
    the attribute-classifier audit (audit/sample_bias.parquet) is given, its frac_female / ci beside them.
    outputs: table; labels (per sample: word, index, scoredecomp_female, elbo_female); agreement (.csv, and the
    Parquet beside it): per word Cohen's κ between each pair of the attribute classifier (its per-sample labels,
    `classifier_labels`), the ELBO and ScoreDecomp, and their raw agreement.
    """
    params = settings
    model = load_score_model(model_dir, conditioning, params)
    attrs = list(params["gender_words"].values())
    ts, draws = list(params["timesteps"]), int(params["n_draws"])
    elbo_stages = [(int(params["samples_elbo"]), 1)]
    rows, labels = [], []
    for word, path in sample_images.items():
        if not Path(path).is_file():
            raise DataError(f"samples of {word!r} ({path}) do not exist; run the sample_word rule first")
        imgs = np.load(path)
        if params["n_samples"]:
            imgs = imgs[: params["n_samples"]]
        seeds = [derive_seed(params["seed"], "scoredecomp-samples", word, i) for i in range(len(imgs))]
        x0 = model.encode(imgs)
        res = score_decomp(model, x0, seeds, attrs, base=params["base"], timesteps=ts, n_draws=draws,
                           variants=["simplex"], space=params["space"], progress=True)["simplex"]
        w = res.mean_scores()
        decomp_female = w.argmax(axis=1) == 1
        elbo_female = elbo_classify(model, x0, seeds, attrs, elbo_stages).labels == 1
        k = int(decomp_female.sum())
        lo, hi = wilson_interval(k, len(w))
        rows.append({"word": word, "n": len(w), "female_weight": float(w[:, 1].mean()),
                     "female_weight_se": float(w[:, 1].std(ddof=1) / np.sqrt(len(w))) if len(w) > 1 else np.nan,
                     "frac_female_argmax": k / len(w), "ci_low": lo, "ci_high": hi,
                     "frac_female_elbo": float(elbo_female.mean()),
                     "timesteps": _t_label(ts), "n_draws": draws, "evals_per_image": res.evals_per_image})
        labels.append(pd.DataFrame({"word": word, "index": np.arange(len(w)), "scoredecomp_female": decomp_female,
                                    "elbo_female": elbo_female}))
        log.info("%s: female weight %.3f, argmax-female %.3f, ELBO-female %.3f (n=%d)", word,
                 rows[-1]["female_weight"], k / len(w), rows[-1]["frac_female_elbo"], len(w))
    table = pd.DataFrame(rows)
    labels = pd.concat(labels, ignore_index=True)
    if classifier_audit:
        cls = pd.read_parquet(classifier_audit)[["word", "frac_female", "ci_low", "ci_high"]]
        cls = cls.rename(columns={"frac_female": "classifier_frac_female", "ci_low": "classifier_ci_low",
                                  "ci_high": "classifier_ci_high"})
        table = table.merge(cls, on="word", how="left")
    agreement = instrument_agreement(labels, classifier_labels) if classifier_labels else None
    with all_or_nothing([p for p in (outputs["table"], outputs.get("labels"), outputs.get("agreement")) if p]):
        write_parquet(table, outputs["table"])
        if outputs.get("labels"):
            write_parquet(labels, outputs["labels"])
        if outputs.get("agreement") and agreement is not None:
            write_parquet(agreement, Path(outputs["agreement"]).with_suffix(".parquet"))
            write_csv(agreement, outputs["agreement"])
    return table


INSTRUMENTS = {"classifier": "classifier_female", "elbo": "elbo_female", "scoredecomp": "scoredecomp_female"}


def instrument_agreement(labels: pd.DataFrame, classifier_labels: str | os.PathLike) -> pd.DataFrame:
    """Per word, on the samples all three instruments labelled: each instrument's P(female), and for each pair
    Cohen's κ (nan where both give every sample one label: κ is undefined) and the raw share of equal labels."""
    from biasdiff.misclassification import cohen_kappa

    from biasdiff.artifacts.tables import read_table

    cls = read_table(classifier_labels, ("word", "index", "classifier_female"), "audit_samples")
    both = labels.merge(cls[["word", "index", "classifier_female"]], on=["word", "index"], how="inner")
    rows = []
    for word, part in both.groupby("word", sort=False):
        row = {"word": word, "n": len(part)}
        row.update({f"p_female_{name}": float(part[col].mean()) for name, col in INSTRUMENTS.items()})
        names = list(INSTRUMENTS)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                row[f"kappa_{a}_{b}"] = cohen_kappa(part[INSTRUMENTS[a]].to_numpy(), part[INSTRUMENTS[b]].to_numpy())
                row[f"agree_{a}_{b}"] = float((part[INSTRUMENTS[a]] == part[INSTRUMENTS[b]]).mean())
        rows.append(row)
        log.info("agreement %s (n=%d): κ classifier–ELBO %.2f, classifier–ScoreDecomp %.2f, ELBO–ScoreDecomp %.2f",
                 word, len(part), row["kappa_classifier_elbo"], row["kappa_classifier_scoredecomp"],
                 row["kappa_elbo_scoredecomp"])
    return pd.DataFrame(rows)


def _real_images(manifest, images, params, section: Mapping[str, Any]):
    return held_out_images(manifest, images, params["split"], section["n_images"], params["seed"])


def _words(model, section: Mapping[str, Any], exclude: Sequence[str] = ()) -> list[str]:
    words = section.get("words") or [c for c in model.conditions if c != NULL and c not in exclude]
    return list(words)


def run_score_bias(model_dir: str | os.PathLike, conditioning: str, manifest: str, images: str,
                   outputs: Mapping[str, str], settings: Mapping[str, Any]) -> pd.DataFrame:
    """Rule score_bias: female weight of each word's score on {male word, female word}, per t, on real images.
    outputs: table, figure."""
    params = settings
    model = load_score_model(model_dir, conditioning, params)
    section = params["score_bias"]
    male, female = params["gender_words"].values()
    words = _words(model, section, exclude=(male, female))
    rows, imgs, seeds = _real_images(manifest, images, params, section)
    weights = score_bias_weights(model, model.encode(imgs), seeds, words, male=male, female=female,
                                 timesteps=section["timesteps"], n_draws=section["n_draws"], space=params["space"],
                                 progress=True)
    table = summarize_score_bias(weights, words, section["timesteps"], image_gender=rows["gender"].to_numpy())
    write_parquet(table, outputs["table"])
    save_figure(plot_score_bias(table), outputs["figure"])
    return table


def run_score_similarity(model_dir: str | os.PathLike, conditioning: str, manifest: str, images: str,
                         outputs: Mapping[str, str], settings: Mapping[str, Any]) -> None:
    """Rule score_similarity: cosine between conditions per t (heatmaps, pair curves) and across t per condition.
    outputs: conditions, timesteps, heatmaps, curves, timestep_heatmaps."""
    from biasdiff.scoredecomp.similarity import timestep_similarity

    params = settings
    model = load_score_model(model_dir, conditioning, params)
    section = params["similarity"]
    conds = list(section.get("conditions") or model.conditions)
    _, imgs, seeds = _real_images(manifest, images, params, section)
    x0 = model.encode(imgs)
    pairs = condition_similarity(model, x0, seeds, conds, section["timesteps"], space=params["space"], progress=True)
    across = timestep_similarity(model, x0, seeds, conds, section["timesteps"], space=params["space"], progress=True)
    write_parquet(pairs, outputs["conditions"])
    write_parquet(across, outputs["timesteps"])
    save_figure(plot_condition_heatmaps(pairs), outputs["heatmaps"])
    save_figure(plot_pair_curves(pairs), outputs["curves"])
    save_figure(plot_timestep_heatmaps(across), outputs["timestep_heatmaps"])


def run_lipschitz_diagnostic(model_dir: str | os.PathLike, conditioning: str, manifest: str, images: str,
                             outputs: Mapping[str, str], settings: Mapping[str, Any]) -> pd.DataFrame:
    """Rule lipschitz_diagnostic: ratio distribution per pair of words and t. outputs: ratios, summary, figure."""
    params = settings
    model = load_score_model(model_dir, conditioning, params)
    section = params["lipschitz"]
    words = _words(model, section)
    _, imgs, seeds = _real_images(manifest, images, params, section)
    ratios = lipschitz_ratios(model, model.encode(imgs), seeds, words, section["timesteps"], space=params["space"],
                              progress=True)
    summary = summarize_lipschitz(ratios)
    write_parquet(ratios, outputs["ratios"])
    write_parquet(summary, outputs["summary"])
    save_figure(plot_lipschitz(summary), outputs["figure"])
    return summary
