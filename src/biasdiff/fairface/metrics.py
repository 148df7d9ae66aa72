"""Accuracy with confidence intervals and confusion matrices for the FairFace audit."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from biasdiff.stats import wilson_interval


def accuracy_table(
    predictions: pd.DataFrame, groupings: Sequence[str] = ("race", "gender"), confidence: float = 0.95
) -> pd.DataFrame:
    """Accuracy overall and per group, per (task, method).

    `predictions` needs columns task, method, true, pred and the grouping columns (true race / gender of the image).
    Rows whose `true` is missing (e.g. race on a fixture without race labels) are left out of the denominators;
    a group with no labelled row is reported with n=0 and NaN accuracy, never divided by zero.
    Returns columns task, method, group_by ("overall" or a grouping column), group, n, correct, accuracy, ci_low,
    ci_high, n_unlabelled.
    """
    rows = []
    for (task, method), frame in predictions.groupby(["task", "method"], sort=True):
        labelled = frame[frame["true"].notna()]
        parts = [("overall", "all", labelled, len(frame) - len(labelled))]
        for column in groupings:
            for group, sub in frame.groupby(frame[column].fillna("<unknown>"), sort=True):
                lab = sub[sub["true"].notna()]
                parts.append((column, str(group), lab, len(sub) - len(lab)))
        for group_by, group, lab, unlabelled in parts:
            n = len(lab)
            correct = int((lab["true"] == lab["pred"]).sum())
            low, high = wilson_interval(correct, n, confidence)
            rows.append(
                {
                    "task": task,
                    "method": method,
                    "group_by": group_by,
                    "group": group,
                    "n": n,
                    "correct": correct,
                    "accuracy": correct / n if n else float("nan"),
                    "ci_low": low,
                    "ci_high": high,
                    "n_unlabelled": int(unlabelled),
                }
            )
    return pd.DataFrame(rows)


def confusion_table(predictions: pd.DataFrame, classes: dict[str, Sequence[str]]) -> pd.DataFrame:
    """Long-form confusion counts per (task, method): columns task, method, true, pred, count (zeros included).

    `classes` maps each task to its class names (rows and columns of the matrix); unlabelled rows are skipped.
    """
    rows = []
    for (task, method), frame in predictions.groupby(["task", "method"], sort=True):
        names = list(classes[task])
        lab = frame[frame["true"].notna()]
        counts = pd.crosstab(lab["true"], lab["pred"]).reindex(index=names, columns=names, fill_value=0)
        for t in names:
            for p in names:
                rows.append({"task": task, "method": method, "true": t, "pred": p, "count": int(counts.loc[t, p])})
    return pd.DataFrame(rows)
