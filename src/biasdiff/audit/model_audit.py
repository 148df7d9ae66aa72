"""The per-model audit of the experiment (rule experiment_audit): the shared attribute classifier labels every sample of every point of one
(arm, replicate) model; one row per (point, word) with the counts the summary pools, the classifier-corrected
P(female) (the instrument's SDEdit rates per context, as the sample audit corrects) and the disputed share."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from biasdiff.audit.classifier import AttributeClassifier, check_gender_accuracy
from biasdiff.audit.sample_audit import corrected_columns, instrument_rates, member_spread
from biasdiff.errors import DataError

log = logging.getLogger(__name__)

MODEL_AUDIT_COLUMNS = ["arm", "rep", "point", "guidance_scale", "step", "main", "word", "n", "n_female",
                       "frac_female", "frac_female_corrected", "corrected_ci_low", "corrected_ci_high",
                       "frac_disputed"]


def audit_model(
    samples: Mapping[tuple[str, str], str | os.PathLike],
    points: Sequence[Mapping[str, Any]],
    classifier: AttributeClassifier,
    rates: Mapping[str, tuple] | None,
    arm: str,
    rep: int,
    batch_size: int = 256,
    resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """MODEL_AUDIT_COLUMNS for every (point id, word) in `samples` (-> .npy path); `points` describe the point ids."""
    by_id = {p["id"]: p for p in points}
    rows = []
    for (point, word), path in samples.items():
        if not Path(path).is_file():
            raise DataError(f"samples {path} ({word!r} at point {point}) do not exist; they are made by the rule "
                            "experiment_sample (or sample_word for the base model's main point)")
        images = np.load(path)
        proba = classifier.member_proba(images, batch_size=batch_size)
        predicted = classifier.labels_of({h: p.mean(0) for h, p in proba.items()})
        female = predicted["gender"] == "female"
        spec = by_id[point]
        row = {"arm": arm, "rep": int(rep), "point": point, "guidance_scale": float(spec["guidance_scale"]),
               "step": int(spec["step"]), "main": bool(spec["main"]), "word": word, "n": int(len(female)),
               "n_female": int(female.sum()), "frac_female": float(female.mean())}
        row.update(corrected_columns(predicted["gender"], predicted["occupation"], rates, resamples, seed))
        row["frac_disputed"] = member_spread(classifier.labels_of({"gender": proba["gender"]})["gender"])["frac_disputed"]
        rows.append(row)
        log.info("%s rep-%d %-10s %-12s P(female) %.3f (%d/%d), corrected %.3f, disputed %.3f", arm, rep, point, word,
                 row["frac_female"], row["n_female"], row["n"], row["frac_female_corrected"], row["frac_disputed"])
    return pd.DataFrame(rows, columns=MODEL_AUDIT_COLUMNS)


def run_model_audit(
    *,
    samples: Mapping[tuple[str, str], str | os.PathLike],
    points: Sequence[Mapping[str, Any]],
    classifier_dir: str | os.PathLike,
    classifier_metrics: str | os.PathLike,
    sdedit: str | os.PathLike | None,
    arm: str,
    rep: int,
    output: str | os.PathLike,
    settings: Mapping[str, Any],
) -> pd.DataFrame:
    """Rule experiment_audit: the classifier must pass the audits' accuracy floor; writes the table to `output`."""
    from biasdiff.io import write_parquet

    metrics = json.loads(Path(classifier_metrics).read_text())
    check_gender_accuracy(metrics, float(settings["gender_accuracy_floor"]))
    classifier = AttributeClassifier.load(classifier_dir)
    rates = instrument_rates(sdedit, float(settings["correction_strength"])) if sdedit else None
    table = audit_model(samples, points, classifier, rates, arm, rep, int(settings["batch_size"]),
                        int(settings.get("correction_resamples", 2000)), int(settings.get("seed", 0)))
    write_parquet(table, output)
    return table
