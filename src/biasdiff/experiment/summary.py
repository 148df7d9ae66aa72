"""The experiment's summary across models: per arm x sampling point x word, P(female) pooled over replicates with an
interval that includes between-model variance (`biasdiff.experiment.stats`), raw and classifier-corrected side by
side; each arm's difference from the reference arm; the embedding's gender projection per arm and word; and the
dose-response fit across arms and neutral words. Also the markdown headline and the report's landing-page text."""

from __future__ import annotations

import base64
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from biasdiff.experiment.stats import arm_difference, dose_response, replicate_interval, t_interval

log = logging.getLogger(__name__)

# What the summary reads of each model's audit (rule experiment_audit, docs/CONTRACTS.md).
AUDIT_COLUMNS = ("arm", "rep", "point", "guidance_scale", "step", "main", "word", "n", "n_female", "frac_female",
                 "frac_female_corrected", "corrected_ci_low", "corrected_ci_high", "frac_disputed")

SUMMARY_COLUMNS = [
    "arm", "transform", "point", "guidance_scale", "step", "main", "word", "role", "n_replicates", "n_per_model",
    "p_female", "ci_low", "ci_high", "covers", "between_sd", "sampling_sd", "replicate_p_female",
    "p_female_corrected", "corrected_ci_low", "corrected_ci_high", "frac_disputed",
    "diff_vs_reference", "diff_ci_low", "diff_ci_high", "diff_p_value", "diff_covers", "gender_projection",
]


def word_role(word: str, calibration_words: Sequence[str], null_word: str = "null") -> str:
    """calibration (the gendered words: does the model draw what it is told?), null (no condition) or neutral."""
    if word in calibration_words:
        return "calibration"
    return "null" if word == null_word else "neutral"


def projection_of(bias: pd.DataFrame) -> dict[str, float]:
    """word -> gender projection of the vectors training saw (the transformed space when there is one)."""
    space = "transformed" if (bias["space"] == "transformed").any() else "projected"
    sub = bias[bias["space"] == space]
    return dict(zip(sub["word"], sub["gender_projection"].astype(float)))


def summarise(audits: pd.DataFrame, projections: Mapping[tuple[str, int], Mapping[str, float]],
              transforms: Mapping[str, str], reference: str, calibration_words: Sequence[str],
              confidence: float = 0.95) -> pd.DataFrame:
    """SUMMARY_COLUMNS from the per-model audits (MODEL_AUDIT_COLUMNS of every (arm, rep)); `projections`: (arm,
    rep) -> word -> gender projection; `transforms`: arm -> label."""
    rows = []
    arms = list(dict.fromkeys(audits["arm"]))
    for (arm, point, word), part in audits.groupby(["arm", "point", "word"], sort=False):
        part = part.sort_values("rep")
        pooled = replicate_interval(part["n_female"], part["n"], confidence)
        corrected = part["frac_female_corrected"].to_numpy(dtype=float)
        if np.isnan(corrected).any():
            c_est, c_lo, c_hi = math.nan, math.nan, math.nan
        elif len(corrected) == 1:
            c_est, c_lo, c_hi = corrected[0], float(part["corrected_ci_low"].iloc[0]), float(part["corrected_ci_high"].iloc[0])
        else:
            c_est, (c_lo, c_hi) = float(corrected.mean()), t_interval(corrected, confidence)
        proj = [projections.get((arm, int(r)), {}).get(word, math.nan) for r in part["rep"]]
        first = part.iloc[0]
        rows.append({
            "arm": arm, "transform": transforms.get(arm, ""), "point": point,
            "guidance_scale": float(first["guidance_scale"]), "step": int(first["step"]), "main": bool(first["main"]),
            "word": word, "role": word_role(word, calibration_words), "n_replicates": pooled["n_replicates"],
            "n_per_model": float(part["n"].mean()), "p_female": pooled["estimate"], "ci_low": pooled["ci_low"],
            "ci_high": pooled["ci_high"], "covers": pooled["covers"], "between_sd": pooled["between_sd"],
            "sampling_sd": pooled["sampling_sd"], "replicate_p_female": [float(v) for v in part["frac_female"]],
            "p_female_corrected": c_est, "corrected_ci_low": c_lo, "corrected_ci_high": c_hi,
            "frac_disputed": float(part["frac_disputed"].mean()),
            "gender_projection": float(np.nanmean(proj)) if not all(map(math.isnan, proj)) else math.nan,
        })
    table = pd.DataFrame(rows)
    ref = audits[audits["arm"] == reference]
    for i, row in table.iterrows():
        other = ref[(ref["point"] == row["point"]) & (ref["word"] == row["word"])]
        mine = audits[(audits["arm"] == row["arm"]) & (audits["point"] == row["point"]) & (audits["word"] == row["word"])]
        if row["arm"] == reference or other.empty:
            table.loc[i, ["diff_vs_reference", "diff_ci_low", "diff_ci_high", "diff_p_value"]] = math.nan
            table.loc[i, "diff_covers"] = ""
            continue
        d = arm_difference(mine["n_female"], mine["n"], other["n_female"], other["n"], confidence)
        table.loc[i, ["diff_vs_reference", "diff_ci_low", "diff_ci_high", "diff_p_value"]] = (
            d["difference"], d["ci_low"], d["ci_high"], d["p_value"])
        table.loc[i, "diff_covers"] = d["covers"]
    words = list(dict.fromkeys(audits["word"]))
    rank = {"calibration": 0, "neutral": 1, "null": 2}
    word_order = sorted(words, key=lambda w: (rank[word_role(w, calibration_words)], words.index(w)))
    table["_arm"] = table["arm"].map({a: i for i, a in enumerate(arms)})
    table["_word"] = table["word"].map({w: i for i, w in enumerate(word_order)})
    table["_point"] = table["point"].map({p: i for i, p in enumerate(dict.fromkeys(audits["point"]))})
    table = table.sort_values(["main", "_point", "_word", "_arm"], ascending=[False, True, True, True], kind="stable")
    return table[SUMMARY_COLUMNS].reset_index(drop=True)


def dose_response_fit(summary: pd.DataFrame, audits: pd.DataFrame, confidence: float = 0.95) -> dict[str, Any]:
    """The dose-response over the main point's neutral words, one point per (arm, word): empirical logit of the
    counts pooled over replicates against the mean gender projection (`biasdiff.experiment.stats.dose_response`)."""
    main = summary[summary["main"] & (summary["role"] == "neutral")].dropna(subset=["gender_projection"])
    counts = audits[audits["main"]].groupby(["arm", "word"])[["n_female", "n"]].sum()
    k = [int(counts.loc[(a, w), "n_female"]) for a, w in zip(main["arm"], main["word"])]
    n = [int(counts.loc[(a, w), "n"]) for a, w in zip(main["arm"], main["word"])]
    fit = dose_response(main["gender_projection"].to_numpy(), k, n, confidence)
    fit["points"] = [{"arm": a, "word": w, "gender_projection": float(x), "n_female": kk, "n": nn}
                     for a, w, x, kk, nn in zip(main["arm"], main["word"], main["gender_projection"], k, n)]
    fit["confidence"] = confidence
    fit["covers"] = ("scatter of the (arm, word) points about the line: sampling, between-model variance and what "
                     "differs between words besides their projection")
    return fit


def _fmt(x: float, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    return "–" if math.isnan(x) else (f"{x:.2g}" if x >= 1e-4 else f"{x:.1e}")


def headline_markdown(summary: pd.DataFrame, fit: Mapping[str, Any], reference: str, design: pd.DataFrame) -> str:
    """The experiment's headline (make demo prints it): per word and arm the pooled P(female) raw and corrected with
    intervals, the difference from the reference arm, then the dose-response slope and what the intervals cover."""
    main = summary[summary["main"]]
    arms = list(dict.fromkeys(main["arm"]))
    reps = design.groupby("arm")["rep"].nunique().to_dict()
    transform = dict(zip(main["arm"], main["transform"]))
    described = ", ".join(f"{a} ({reps.get(a, 0)} replicate(s), {transform[a]})" for a in arms)
    lines = ["# Experiment summary: P(female | word) per embedding arm", "",
             f"Arms: {described}; "
             f"reference arm: {reference}. Main point: guidance {main['guidance_scale'].iloc[0]:g}, "
             f"final step {int(main['step'].iloc[0])}, {int(main['n_per_model'].iloc[0])} samples per word and model.",
             "", "| word | role | arm | P(female) [CI] | corrected [CI] | between-model SD | sampling SD | "
             f"Δ vs {reference} [CI] | p | projection |", "|---|---|---|---|---|---:|---:|---|---:|---:|"]
    for word in dict.fromkeys(main["word"]):
        for _, r in main[main["word"] == word].iterrows():
            diff = ("" if r["arm"] == reference else
                    f"{r['diff_vs_reference']:+.3f} [{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}]")
            lines.append(
                f"| {word} | {r['role']} | {r['arm']} | {_fmt(r['p_female'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] | "
                f"{_fmt(r['p_female_corrected'])} [{_fmt(r['corrected_ci_low'])}, {_fmt(r['corrected_ci_high'])}] | "
                f"{_fmt(r['between_sd'])} | {_fmt(r['sampling_sd'])} | {diff} | "
                f"{'' if r['arm'] == reference else _p(r['diff_p_value'])} | {_fmt(r['gender_projection'], 2)} |")
    covers = sorted(set(main["covers"]))
    dcovers = sorted(set(main["diff_covers"]) - {""})
    lines += ["", f"Intervals ({int(round(100 * fit['confidence']))}%) of P(female) cover: {'; '.join(covers)}. "
              f"Differences: {'; '.join(dcovers) or '–'}. Corrected = Rogan–Gladen with the classifier's SDEdit "
              "sensitivity/specificity per context (measured on the base model).", ""]
    if math.isnan(fit["slope"]):
        lines.append(f"Dose–response: not estimable ({fit['n_points']} neutral (arm, word) points; needs 3 with "
                     "distinct projections).")
    else:
        lines.append(f"Dose–response over {fit['n_points']} neutral (arm, word) points: logit P(female) rises "
                     f"{fit['slope']:.2f} [{fit['slope_ci_low']:.2f}, {fit['slope_ci_high']:.2f}] per unit of gender "
                     f"projection (p = {_p(fit['slope_p_value'])}, R² = {fit['r_squared']:.2f}); the interval covers "
                     f"{fit['covers']}. Calibration rows (man, woman) are not in the fit.")
    return "\n".join(lines) + "\n"


def _data_uri(path: str | os.PathLike) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def landing_rst(summary: pd.DataFrame, fit: Mapping[str, Any], reference: str, figures: Sequence[str]) -> str:
    """reStructuredText the report's landing page includes (report/workflow.rst): one row per word, one column per
    arm (pooled P(female) [interval], corrected below), each arm's difference from the reference, the dose-response
    slope and the figures inline (data URIs), so a reader sees the answer before any category."""
    main = summary[summary["main"]]
    arms = list(dict.fromkeys(main["arm"]))
    others = [a for a in arms if a != reference]
    header = ["word", *[f"{a} ({int(main.loc[main['arm'] == a, 'n_replicates'].iloc[0])} rep.)" for a in arms],
              *[f"{a} − {reference} [CI], p" for a in others], "projection per arm"]
    body = []
    for word in dict.fromkeys(main["word"]):
        rows = main[main["word"] == word].set_index("arm")
        cells = [f"{word} ({rows['role'].iloc[0]})"]
        for a in arms:
            r = rows.loc[a]
            corrected = ("" if math.isnan(r["p_female_corrected"]) else
                         f" (corrected {_fmt(r['p_female_corrected'])})")
            cells.append(f"{_fmt(r['p_female'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]{corrected}")
        for a in others:
            r = rows.loc[a]
            cells.append(f"{r['diff_vs_reference']:+.3f} [{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}], "
                         f"p {_p(r['diff_p_value'])}")
        cells.append(" / ".join(_fmt(rows.loc[a, "gender_projection"], 2) for a in arms))
        body.append(cells)
    lines = ["The answer: P(female | word) per embedding arm", "-" * 46, "",
             ".. list-table::", "   :header-rows: 1", ""]
    for cells in [header, *body]:
        lines.append("   * - " + cells[0])
        lines += [f"     - {c}" for c in cells[1:]]
    lines += ["", f"Main point: guidance {main['guidance_scale'].iloc[0]:g}, final weights, "
              f"{int(main['n_per_model'].iloc[0])} samples per word and model. Intervals cover: "
              f"{'; '.join(sorted(set(main['covers'])))}. Differences: "
              f"{'; '.join(sorted(set(main['diff_covers']) - {''})) or '–'}.", ""]
    if not math.isnan(fit["slope"]):
        lines += [f"Dose–response (neutral words, {fit['n_points']} arm × word points): slope of logit P(female) on the "
                  f"gender projection {fit['slope']:.2f} [{fit['slope_ci_low']:.2f}, {fit['slope_ci_high']:.2f}], "
                  f"p = {_p(fit['slope_p_value'])}.", ""]
    for path in figures:  # the URI wrapped over indented lines (docutils joins them; one line would pass its limit)
        uri = _data_uri(path)
        lines += [".. image::", *(f"   {uri[i:i + 2000]}" for i in range(0, len(uri), 2000)), "   :width: 90%", ""]
    return "\n".join(lines) + "\n"


def run_summary(
    *,
    audits: Sequence[str | os.PathLike],
    biases: Mapping[tuple[str, int], str | os.PathLike],
    design: Sequence[Mapping[str, Any]],
    reference: str,
    calibration_words: Sequence[str],
    confidence: float,
    outputs: Mapping[str, str | os.PathLike],
) -> pd.DataFrame:
    """Rule experiment_summary: read every model's audit (rule experiment_audit) and every model's embedding bias
    table, write summary (.parquet), csv, markdown, dose-response fit (.json), the landing-page .rst and the four
    figures. Nothing is kept unless everything was written."""
    import matplotlib.pyplot as plt

    from biasdiff.artifacts.tables import read_table
    from biasdiff.experiment.figures import arm_bars, dose_response_figure, guidance_figure, training_length_figure
    from biasdiff.io import all_or_nothing, atomic_path, save_figure, write_json, write_parquet

    table = pd.concat([read_table(p, AUDIT_COLUMNS, "experiment_audit") for p in audits], ignore_index=True)
    projections = {key: projection_of(read_table(p, ("space", "word", "gender_projection"), "embed_words"))
                   for key, p in biases.items()}
    design_frame = pd.DataFrame(list(design))
    transforms = dict(zip(design_frame["arm"], design_frame["transform"]))
    summary = summarise(table, projections, transforms, reference, calibration_words, confidence)
    fit = dose_response_fit(summary, table, confidence)
    figures = {"bars": arm_bars(summary), "dose_response": dose_response_figure(summary, fit),
               "guidance": guidance_figure(summary), "training_length": training_length_figure(summary)}
    names = ["table", "csv", "markdown", "fit", "landing", *figures]
    try:
        with all_or_nothing([outputs[k] for k in names]):
            write_parquet(summary, outputs["table"])
            with atomic_path(outputs["csv"]) as tmp:
                summary.drop(columns=["replicate_p_female"]).to_csv(tmp, index=False, float_format="%.4f")
            for name, fig in figures.items():
                save_figure(fig, outputs[name])
            write_json({**fit, "reference": reference, "design": list(design)}, outputs["fit"])
            markdown = headline_markdown(summary, fit, reference, design_frame)
            with atomic_path(outputs["markdown"]) as tmp:
                tmp.write_text(markdown)
            with atomic_path(outputs["landing"]) as tmp:
                tmp.write_text(landing_rst(summary, fit, reference, [outputs["bars"], outputs["dose_response"]]))
    finally:
        for fig in figures.values():
            plt.close(fig)
    log.info("%s", markdown)
    return summary
