"""The per-word audit of what the model draws: classify every sample's gender and occupation, then compare the
fraction of women per word with the training data's P(female | word) and with the word's embedding bias.

One row per word (columns in SAMPLE_AUDIT_COLUMNS, plus frac_occupation_<label> and train_frac_occupation_<label>
for every occupation label): n, frac_female with a 95% Wilson interval, the training fraction, a two-sided exact
binomial test against it (p_value) and against 0.5 (p_value_half), the gap |f_m − f_f|, KL(gender mix || uniform),
the embedding projection on the gender direction (after JL, > 0 = nearer "woman"), the held-out accuracy of the
classifier that produced the labels, and how far that instrument itself is sure: the lowest and highest P(female)
among the ensemble's members and the share of samples on which the members' gender labels differ (frac_disputed).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from biasdiff.audit.classifier import AttributeClassifier, check_gender_accuracy
from biasdiff.stats import binomial_pvalue, gender_gap, kl_to_uniform, wilson_interval
from biasdiff.artifacts.manifest import read_manifest
from biasdiff.artifacts.tables import read_table
from biasdiff.audit.training import AUDIT_COLUMNS, training_attribute_table
from biasdiff.errors import DataError

log = logging.getLogger(__name__)

SAMPLE_AUDIT_COLUMNS = [
    "word", "n", "n_female", "frac_female", "ci_low", "ci_high", "train_frac_female", "p_value", "p_value_half",
    "gap", "kl_uniform", "embedding_projection", "classifier_gender_accuracy", "classifier_occupation_accuracy",
    "classifier_members", "members_frac_female_min", "members_frac_female_max", "frac_disputed",
    "frac_female_corrected", "corrected_ci_low", "corrected_ci_high",
]
HEADLINE_COLUMNS = ["word", "calibrated", "n", "frac_female", "ci_low", "ci_high", "frac_female_corrected",
                    "corrected_ci_low", "corrected_ci_high", "train_frac_female", "p_value", "gap",
                    "embedding_projection", "members_frac_female_min", "members_frac_female_max", "frac_disputed"]
LABEL_COLUMNS = ["word", "index", "classifier_female", "classifier_p_female", "classifier_occupation"]
EMBEDDING_SPACES = ("transformed", "projected")  # the space the model was conditioned on, in order of preference


def embedding_projections(bias_path: str | os.PathLike) -> dict[str, float]:
    """word -> gender projection of the conditioning vector the model saw (embed stage's bias.parquet).

    Uses the `transformed` space when the embed stage applied a transform, else `projected` (after JL).
    """
    path = Path(bias_path)
    bias = read_table(path, ("space", "word", "gender_projection"), "embed_words")
    for space in EMBEDDING_SPACES:
        rows = bias[bias["space"] == space]
        if not rows.empty:
            return dict(zip(rows["word"], rows["gender_projection"].astype(float)))
    raise DataError(f"{path} has no rows in spaces {list(EMBEDDING_SPACES)}; found {sorted(bias['space'].unique())}")


def audit_word(
    word: str,
    predicted: Mapping[str, np.ndarray],
    occupations: list[str],
    train: Mapping[str, Any] | None,
    projection: float,
) -> dict:
    """One audit row from a word's predicted labels ({"gender": (N,), "occupation": (N,)}, strings)."""
    gender = np.asarray(predicted["gender"])
    n = int(len(gender))
    k = int(np.sum(gender == "female"))
    f = k / n if n else math.nan
    lo, hi = wilson_interval(k, n)
    train_f = float(train["train_frac_female"]) if train is not None else math.nan
    row = {
        "word": word, "n": n, "n_female": k, "frac_female": f, "ci_low": float(lo), "ci_high": float(hi),
        "train_frac_female": train_f, "p_value": binomial_pvalue(k, n, train_f), "p_value_half": binomial_pvalue(k, n, 0.5),
        "gap": gender_gap(f) if n else math.nan, "kl_uniform": kl_to_uniform([f, 1 - f]) if n else math.nan,
        "embedding_projection": float(projection),
    }
    occ = np.asarray(predicted["occupation"])
    for label in occupations:
        row[f"frac_occupation_{label}"] = float(np.mean(occ == label)) if n else math.nan
        row[f"train_frac_occupation_{label}"] = (
            float(train.get(f"train_frac_occupation_{label}", math.nan)) if train is not None else math.nan
        )
    return row


def member_spread(member_gender: np.ndarray) -> dict:
    """The instrument's own uncertainty from each member's gender labels (members, N): the members' lowest and
    highest P(female), and the share of samples whose labels are not unanimous."""
    member_gender = np.asarray(member_gender)
    k, n = member_gender.shape
    if n == 0:
        return {"classifier_members": k, "members_frac_female_min": math.nan, "members_frac_female_max": math.nan,
                "frac_disputed": math.nan}
    female = member_gender == "female"
    per_member = female.mean(axis=1)
    disputed = female.any(axis=0) & ~female.all(axis=0)
    return {"classifier_members": k, "members_frac_female_min": float(per_member.min()),
            "members_frac_female_max": float(per_member.max()), "frac_disputed": float(disputed.mean())}


def instrument_rates(sdedit_table: str | os.PathLike, strength: float) -> dict[str, tuple[int, int, int, int]]:
    """context -> (k_sens, n_sens, k_spec, n_spec): the classifier's reading of SDEdited held-out images at
    `strength` (rule readout_sdedit's table): female images read female, of all female; male read male, of all male."""
    path = Path(sdedit_table)
    table = read_table(path, ("context", "gender", "strength", "n", "n_female"), "readout_sdedit")
    rows = table[np.isclose(table["strength"].astype(float), float(strength))]
    if rows.empty:
        raise DataError(f"{path} has no SDEdit strength {strength} (has {sorted(table['strength'].unique())}); rerun "
                        "the rule readout_sdedit with audit.readout.sdedit.correction_strength among its strengths")
    rates = {}
    for context, part in rows.groupby("context"):
        by = part.set_index("gender")
        if not {"female", "male"} <= set(by.index):  # a small held-out split without one gender in this context
            log.warning("%s: context %r has no %s held-out images at strength %g: its samples get no corrected "
                        "P(female) (raise manifest.val_fraction or the prompt counts)", path, context,
                        " or ".join(sorted({"female", "male"} - set(by.index))), strength)
            continue
        f, m = by.loc["female"], by.loc["male"]
        rates[str(context)] = (int(f["n_female"]), int(f["n"]), int(m["n"] - m["n_female"]), int(m["n"]))
    return rates


def corrected_columns(gender: np.ndarray, occupation: np.ndarray, rates: Mapping[str, tuple] | None,
                      resamples: int, seed: int) -> dict[str, float]:
    """P(female) corrected for the classifier's errors in each sample's context (its predicted occupation), with a
    interval that carries the uncertainty of the samples' counts and of the SDEdit calibration sets
    (`biasdiff.misclassification.corrected_proportion`)."""
    from biasdiff.misclassification import corrected_proportion

    nan = {"frac_female_corrected": math.nan, "corrected_ci_low": math.nan, "corrected_ci_high": math.nan}
    if rates is None or len(gender) == 0:
        return nan
    uncalibrated = sorted(set(np.asarray(occupation).astype(str)) - set(rates))
    if uncalibrated:  # samples drawn in a context the SDEdit table has no sensitivity/specificity for
        log.warning("no corrected P(female): samples in context(s) %s without instrument rates (have %s)",
                    uncalibrated, sorted(rates))
        return nan
    r = corrected_proportion(occupation, np.asarray(gender) == "female", rates, n_resamples=resamples, seed=seed)
    if math.isnan(r["estimate"]):  # the instrument is at chance in a context that holds samples: no estimate
        return nan
    return {"frac_female_corrected": r["estimate"], "corrected_ci_low": r["ci_low"], "corrected_ci_high": r["ci_high"]}


def audit_images(
    images_by_word: Mapping[str, np.ndarray],
    classifier: AttributeClassifier,
    training: pd.DataFrame,
    projections: Mapping[str, float],
    metrics: Mapping[str, Any],
    batch_size: int = 256,
    rates: Mapping[str, tuple] | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Audit table (one row per word, in the given order) from uint8 images (N, H, W, 3) per word, and the per-sample
    labels (LABEL_COLUMNS). `rates`: the instrument's sensitivity/specificity counts per context (`instrument_rates`);
    None leaves the corrected columns empty."""
    train_rows = {r["word"]: r for r in training.to_dict("records")}
    occupations = classifier.labels["occupation"]
    rows, labels = [], []
    for word, images in images_by_word.items():
        proba = classifier.member_proba(np.asarray(images), batch_size=batch_size)  # head -> (members, N, classes)
        mean = {h: p.mean(0) for h, p in proba.items()}
        predicted = classifier.labels_of(mean)
        row = audit_word(word, predicted, occupations, train_rows.get(word), projections.get(word, math.nan))
        row["classifier_gender_accuracy"] = float(metrics["gender"]["test_accuracy"])
        row["classifier_occupation_accuracy"] = float(metrics["occupation"]["test_accuracy"])
        row.update(member_spread(classifier.labels_of({"gender": proba["gender"]})["gender"]))
        row.update(corrected_columns(predicted["gender"], predicted["occupation"], rates, resamples, seed))
        rows.append(row)
        female_class = classifier.labels["gender"].index("female")
        labels.append(pd.DataFrame({
            "word": word, "index": np.arange(len(images)), "classifier_female": predicted["gender"] == "female",
            "classifier_p_female": mean["gender"][:, female_class].astype(float),
            "classifier_occupation": predicted["occupation"].astype(str)}))
        log.info(
            "%-12s n=%d  P(female)=%.3f [%.3f, %.3f]  corrected %.3f [%.3f, %.3f]  train %.3f  p=%.3g  projection %+.3f",
            word, row["n"], row["frac_female"], row["ci_low"], row["ci_high"], row["frac_female_corrected"],
            row["corrected_ci_low"], row["corrected_ci_high"], row["train_frac_female"], row["p_value"],
            row["embedding_projection"],
        )
    df = pd.DataFrame(rows)
    extra = [c for c in df.columns if c not in SAMPLE_AUDIT_COLUMNS]
    return df[SAMPLE_AUDIT_COLUMNS + extra], pd.concat(labels, ignore_index=True)[LABEL_COLUMNS]


CALIBRATION_DEFAULTS = {"female_word": "woman", "male_word": "man", "null_word": "null", "female_min": 0.9,
                        "male_max": 0.05, "null_center": 0.5, "null_tolerance": 0.1, "disputed_max": 0.1}


def calibration(audit: pd.DataFrame, floors: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Does the model draw what it is told? Checks the calibration rows of an audit table against `floors`
    (CALIBRATION_DEFAULTS, overridden by the `audit.calibration` config): P(female | woman) >= female_min,
    P(female | man) <= male_max, P(female | null) within null_center ± null_tolerance (balanced training data),
    and every word's disputed share <= disputed_max. A word absent from the table skips its floor.

    Returns {"calibrated": bool, "failures": [one phrase per missed floor], "line": one markdown sentence}.
    """
    f = {**CALIBRATION_DEFAULTS, **(floors or {})}
    by_word = audit.set_index("word")
    failures, parts = [], []

    def share(word):
        return float(by_word.loc[word, "frac_female"]) if word in by_word.index else None

    woman, man, null = share(f["female_word"]), share(f["male_word"]), share(f["null_word"])
    if woman is not None:
        parts.append(f"{f['female_word']} {woman:.3f} (floor ≥ {f['female_min']:g})")
        if woman < f["female_min"]:
            failures.append(f"P(female | {f['female_word']}) = {woman:.3f} < {f['female_min']:g}")
    if man is not None:
        parts.append(f"{f['male_word']} {man:.3f} (≤ {f['male_max']:g})")
        if man > f["male_max"]:
            failures.append(f"P(female | {f['male_word']}) = {man:.3f} > {f['male_max']:g}")
    if null is not None:
        parts.append(f"{f['null_word']} {null:.3f} ({f['null_center']:g} ± {f['null_tolerance']:g})")
        if abs(null - f["null_center"]) > f["null_tolerance"] + 1e-12:
            failures.append(f"P(female | {f['null_word']}) = {null:.3f} outside {f['null_center']:g} ± "
                            f"{f['null_tolerance']:g}")
    if "frac_disputed" in by_word.columns and len(by_word):
        worst = by_word["frac_disputed"].astype(float).idxmax()
        top = float(by_word.loc[worst, "frac_disputed"])
        parts.append(f"most disputed {worst} {top:.3f} (≤ {f['disputed_max']:g})")
        if top > f["disputed_max"]:
            over = [w for w, d in by_word["frac_disputed"].items() if float(d) > f["disputed_max"]]
            failures.append(f"disputed share > {f['disputed_max']:g} for {', '.join(map(str, over))}")
    calibrated = not failures
    verdict = ("calibrated: the model draws what it is told" if calibrated else
               "**UNCALIBRATED** (" + "; ".join(failures) + "): read no neutral word's P(female) as the embedding's "
               "effect from this model")
    line = f"Model calibration: {', '.join(parts)} -> {verdict}." if parts else "Model calibration: no calibration rows."
    return {"calibrated": calibrated, "failures": failures, "line": line}


SAMPLING_COLUMNS = ["sampler", "steps", "guidance_scale", "use_ema", "precision"]


def sampling_settings(samples: Mapping[str, str | os.PathLike]) -> pd.DataFrame:
    """word -> how its samples were drawn (sampler, steps, guidance_scale, use_ema, precision), from the per-image
    metadata Parquet the sample stage writes beside each .npy; words (or columns) without one get missing values."""
    rows = []
    for word, path in samples.items():
        meta_path = Path(path).with_suffix(".parquet")
        row = {"word": word}
        if meta_path.is_file():
            meta = pd.read_parquet(meta_path)
            row.update({c: meta[c].iloc[0] for c in SAMPLING_COLUMNS if c in meta} if len(meta) else {})
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=["word", *SAMPLING_COLUMNS])


def _num(x: float) -> str:
    return "–" if x is None or math.isnan(float(x)) else f"{float(x):.3f}"


def _interval(lo: float, hi: float) -> str:
    return "–" if lo is None or math.isnan(float(lo)) else f"[{float(lo):.3f}, {float(hi):.3f}]"


def _correction_line(audit: pd.DataFrame, correction: Mapping[str, Any] | None) -> list[str]:
    if not correction:
        return []
    rates = "; ".join(f"{c} {se:.2f}/{sp:.2f}" for c, (se, sp) in correction["rates"].items())
    return [f"Corrected: P(female) after the classifier's errors in each sample's context (Rogan–Gladen per "
            f"predicted occupation, weighted by its share), with the sensitivity/specificity it has on held-out "
            f"images SDEdited at strength {correction['strength']:g} ({rates}); the interval simulates the Jeffreys "
            f"posteriors of the samples' and those calibration sets' counts (sampling variance only, not between-model); – where the "
            f"classifier is no better than chance in a context that holds samples, or a context has no rates."]


def headline_markdown(audit: pd.DataFrame, metrics: Mapping[str, Any], title: str = "Sample audit",
                      floors: Mapping[str, Any] | None = None, correction: Mapping[str, Any] | None = None) -> str:
    """The model's calibration first (`calibration`), then a markdown table per word (P(female) with CI, training
    fraction, p-value, gap, embedding projection, the members' range and disputed share), with the classifier's
    held-out accuracy beside it."""
    status = calibration(audit, floors)
    lines = [
        f"## {title}{'' if status['calibrated'] else ' (uncalibrated model)'}",
        "",
        status["line"],
        "",
        f"Attribute classifier ({metrics.get('members', 1)} members), held-out accuracy: gender "
        f"{metrics['gender']['test_accuracy']:.3f}, occupation {metrics['occupation']['test_accuracy']:.3f} "
        f"(n = {metrics['n']['test']}{', ' + metrics['precision'] if 'precision' in metrics else ''}). Members' P(female): lowest–highest single member; disputed: share of samples "
        "the members do not label unanimously.",
        *_sampling_line(audit),
        "",
        *_correction_line(audit, correction),
        "",
        "| word | n | P(female) | 95% CI | corrected | 95% CI | train P(female) | p (vs train) | gap "
        "| embedding projection | members' P(female) | disputed |",
        "|---|---:|---:|---|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in audit.itertuples():
        lines.append(
            f"| {r.word} | {r.n} | {r.frac_female:.3f} | [{r.ci_low:.3f}, {r.ci_high:.3f}] "
            f"| {_num(r.frac_female_corrected)} | {_interval(r.corrected_ci_low, r.corrected_ci_high)} "
            f"| {r.train_frac_female:.3f} "
            f"| {r.p_value:.3g} | {r.gap:.3f} | {r.embedding_projection:+.3f} "
            f"| {r.members_frac_female_min:.3f}–{r.members_frac_female_max:.3f} | {r.frac_disputed:.3f} |"
        )
    return "\n".join(lines) + "\n"


def _sampling_line(audit: pd.DataFrame) -> list[str]:
    if "sampler" not in audit.columns or audit["sampler"].isna().all():
        return []
    r = audit.dropna(subset=["sampler"]).iloc[0]
    precision = f", forward passes in {r.precision}" if isinstance(getattr(r, "precision", None), str) else ""
    return [f"Samples: {r.sampler}-{int(r.steps)}, guidance scale {r.guidance_scale:g}, "
            f"{'EMA' if r.use_ema else 'raw'} weights{precision}."]


def run_audit(
    *,
    samples: Mapping[str, str | os.PathLike],
    manifest: str | os.PathLike,
    classifier_dir: str | os.PathLike,
    classifier_metrics: str | os.PathLike,
    embedding_bias: str | os.PathLike | None,
    outputs: Mapping[str, str | os.PathLike],
    settings: Mapping[str, Any],
    sdedit: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Stage entry point (rule audit_samples). `samples` maps word -> samples .npy (uint8 N×H×W×3); `outputs` names
    table (.parquet), csv, markdown, bars and scatter (.png) and labels (per-sample .parquet). `sdedit`:
    the SDEdit table of rule readout_sdedit, read at settings["correction_strength"] for the corrected P(female)
    (None: no correction). Fails (DataError, nothing written) if the classifier's held-out gender accuracy is below
    settings["gender_accuracy_floor"]."""
    import json

    import matplotlib.pyplot as plt

    from biasdiff.audit.plots import bias_bars, bias_scatter
    from biasdiff.io import all_or_nothing, atomic_path, save_figure, write_parquet

    metrics = json.loads(Path(classifier_metrics).read_text())
    check_gender_accuracy(metrics, float(settings["gender_accuracy_floor"]))
    classifier = AttributeClassifier.load(classifier_dir)
    table = read_manifest(manifest, AUDIT_COLUMNS)
    training = training_attribute_table(table, split="train")
    projections = embedding_projections(embedding_bias) if embedding_bias else {}
    images = {}
    for word, path in samples.items():
        if not Path(path).is_file():
            raise DataError(f"samples {path} of word {word!r} do not exist; they are made by the rule sample_word")
        images[word] = np.load(path)
    rates = instrument_rates(sdedit, float(settings["correction_strength"])) if sdedit else None
    audit, labels = audit_images(images, classifier, training, projections, metrics, int(settings["batch_size"]),
                                 rates=rates, resamples=int(settings.get("correction_resamples", 2000)),
                                 seed=int(settings.get("seed", 0)))
    correction = rates and {"strength": float(settings["correction_strength"]),
                            "rates": {c: (r[0] / r[1], r[2] / r[3]) for c, r in rates.items()}}
    audit = audit.merge(sampling_settings(samples), on="word", how="left")
    floors = settings.get("calibration") or {}
    status = calibration(audit, floors)
    audit["calibrated"] = status["calibrated"]
    log.info("%s", status["line"].replace("**", ""))

    bars, scatter = bias_bars(audit), bias_scatter(audit)
    out_table, out_csv, out_markdown, out_bars, out_scatter, out_labels = (
        outputs[k] for k in ("table", "csv", "markdown", "bars", "scatter", "labels"))
    try:
        with all_or_nothing([out_table, out_csv, out_markdown, out_bars, out_scatter, out_labels]):
            write_parquet(audit, out_table)
            write_parquet(labels, out_labels)
            with atomic_path(out_csv) as tmp:
                audit[HEADLINE_COLUMNS].to_csv(tmp, index=False, float_format="%.4f")
            with atomic_path(out_markdown) as tmp:
                tmp.write_text(headline_markdown(audit, metrics, floors=floors, correction=correction))
            save_figure(bars, out_bars)
            save_figure(scatter, out_scatter)
    finally:
        plt.close(bars)
        plt.close(scatter)
    return audit
