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
from typing import Any, Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from biasdiff.experiment.stats import (arm_difference, dose_response, gap_difference, gap_dose_response,
                                       replicate_interval, t_interval)

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

# The within-model contrast (experiment.contrast: word_a, word_b) per arm x point: the gap P(female | word_a) -
# P(female | word_b) of each model, pooled over replicates, and each arm's gap minus the reference arm's.
CONTRAST_COLUMNS = [
    "arm", "transform", "point", "guidance_scale", "step", "main", "word_a", "word_b", "n_replicates", "gap",
    "gap_ci_low", "gap_ci_high", "gap_p_value", "gap_covers", "replicate_gap", "diff_vs_reference", "diff_ci_low",
    "diff_ci_high", "diff_p_value", "diff_covers", "projection_gap",
]


def paired_arms(design: pd.DataFrame, reference: str) -> set[str]:
    """Arms whose replicate r shares its training seed with the reference arm's replicate r for every r (experiment.
    seeds: paired, no train.seed in the overlay): their differences from the reference are paired by replicate."""
    ref = design[design["arm"] == reference].set_index("rep")["train_seed"]
    out = set()
    for arm, part in design.groupby("arm", sort=False):
        seeds = part.set_index("rep")["train_seed"]
        if arm != reference and len(ref) and seeds.index.equals(ref.index) and (seeds == ref).all():
            out.add(arm)
    return out


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
              confidence: float = 0.95, paired: Collection[str] = ()) -> pd.DataFrame:
    """SUMMARY_COLUMNS from the per-model audits (MODEL_AUDIT_COLUMNS of every (arm, rep)); `projections`: (arm,
    rep) -> word -> gender projection; `transforms`: arm -> label; `paired`: arms compared with the reference
    replicate by replicate (`paired_arms`)."""
    rows = []
    arms = _reference_first(audits["arm"], reference)
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
        mine, other = mine.sort_values("rep"), other.sort_values("rep")
        d = arm_difference(mine["n_female"], mine["n"], other["n_female"], other["n"], confidence,
                           paired=row["arm"] in paired)
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


def contrast_table(audits: pd.DataFrame, projections: Mapping[tuple[str, int], Mapping[str, float]],
                   transforms: Mapping[str, str], reference: str, words: Sequence[str], confidence: float = 0.95,
                   paired: Collection[str] = ()) -> pd.DataFrame:
    """CONTRAST_COLUMNS: per arm x point, the gap P(female | words[0]) - P(female | words[1]) within each model
    (paired t over replicates; Newcombe with one model), and the arm's gap minus the reference arm's (paired by
    replicate for `paired` arms, else Welch; a sampling-only Wald interval with one model per arm). The question
    it answers: does the transform close the gap between the two words that the data renders alike?"""
    word_a, word_b = words
    rows, gaps = [], {}
    for (arm, point), part in audits.groupby(["arm", "point"], sort=False):
        a = part[part["word"] == word_a].sort_values("rep").set_index("rep")
        b = part[part["word"] == word_b].sort_values("rep").set_index("rep")
        reps = a.index.intersection(b.index)
        if reps.empty:
            continue
        a, b = a.loc[reps], b.loc[reps]
        counts = np.column_stack([a["n_female"], a["n"], b["n_female"], b["n"]]).astype(int)
        gaps[(arm, point)] = counts
        g = arm_difference(counts[:, 0], counts[:, 1], counts[:, 2], counts[:, 3], confidence, paired=True)
        proj = [projections.get((arm, int(r)), {}).get(word_a, math.nan) -
                projections.get((arm, int(r)), {}).get(word_b, math.nan) for r in reps]
        first = a.iloc[0]
        rows.append({
            "arm": arm, "transform": transforms.get(arm, ""), "point": point,
            "guidance_scale": float(first["guidance_scale"]), "step": int(first["step"]), "main": bool(first["main"]),
            "word_a": word_a, "word_b": word_b, "n_replicates": len(reps), "gap": g["difference"],
            "gap_ci_low": g["ci_low"], "gap_ci_high": g["ci_high"], "gap_p_value": g["p_value"],
            "gap_covers": g["covers"],
            "replicate_gap": [float(x) for x in counts[:, 0] / counts[:, 1] - counts[:, 2] / counts[:, 3]],
            "projection_gap": float(np.nanmean(proj)) if not all(map(math.isnan, proj)) else math.nan,
        })
    table = pd.DataFrame(rows, columns=[c for c in CONTRAST_COLUMNS if not c.startswith("diff_")])
    for col in ("diff_vs_reference", "diff_ci_low", "diff_ci_high", "diff_p_value"):
        table[col] = math.nan
    table["diff_covers"] = ""
    for i, row in table.iterrows():
        ref = gaps.get((reference, row["point"]))
        if row["arm"] == reference or ref is None:
            continue
        d = gap_difference(gaps[(row["arm"], row["point"])], ref, confidence, paired=row["arm"] in paired)
        table.loc[i, ["diff_vs_reference", "diff_ci_low", "diff_ci_high", "diff_p_value"]] = (
            d["difference"], d["ci_low"], d["ci_high"], d["p_value"])
        table.loc[i, "diff_covers"] = d["covers"]
    order = {a: i for i, a in enumerate(_reference_first(table["arm"], reference))}
    table = table.assign(_arm=table["arm"].map(order)).sort_values(["main", "_arm"], ascending=[False, True],
                                                                    kind="stable")
    return table[CONTRAST_COLUMNS].reset_index(drop=True)


def gap_fit(contrast: pd.DataFrame, confidence: float = 0.95) -> dict[str, Any]:
    """The gap's dose-response at the main point: each arm's pooled within-model gap against its projection gap
    (`biasdiff.experiment.stats.gap_dose_response`), with the points it was fitted to. Across arms the words, their
    training images and the replicate seeds stay the same; only the conditioning vectors change."""
    main = contrast[contrast["main"]]
    fit = gap_dose_response(main["projection_gap"].to_numpy(), main["gap"].to_numpy(), confidence)
    fit["words"] = [str(main["word_a"].iloc[0]), str(main["word_b"].iloc[0])] if len(main) else []
    fit["points"] = [{"arm": a, "projection_gap": float(x), "gap": float(g), "n_replicates": int(r)}
                     for a, x, g, r in zip(main["arm"], main["projection_gap"], main["gap"], main["n_replicates"])]
    return fit


def gap_fit_sentence(fit: Mapping[str, Any]) -> str:
    """One line on the gap's dose-response (summary.md and the landing page)."""
    if math.isnan(fit["slope"]):
        return (f"Gap dose–response: not estimable ({fit['n_arms']} arm(s) with a projection gap; needs 3 with "
                "distinct projection gaps).")
    return (f"Gap dose–response over {fit['n_arms']} arms: the gap changes {fit['slope']:+.2f} "
            f"[{fit['slope_ci_low']:+.2f}, {fit['slope_ci_high']:+.2f}] per unit of projection gap "
            f"(p = {_p(fit['slope_p_value'])}, R² = {fit['r_squared']:.2f}); the line's gap at projection gap 0: "
            f"{fit['intercept']:+.2f} (point estimate). The interval covers {fit['covers']}.")


def _reference_first(arms: Sequence[str], reference: str) -> list[str]:
    """Arms in design order with the reference arm first (tables and figures read left to right from it)."""
    arms = list(dict.fromkeys(arms))
    return [a for a in arms if a == reference] + [a for a in arms if a != reference]


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


def headline_markdown(summary: pd.DataFrame, fit: Mapping[str, Any], reference: str, design: pd.DataFrame,
                      contrast: pd.DataFrame | None = None, contrast_fit: Mapping[str, Any] | None = None) -> str:
    """The experiment's headline (make demo prints it): per word and arm the pooled P(female) raw and corrected with
    intervals, the difference from the reference arm, the dose-response slope and what the intervals cover, then the
    within-model gap of experiment.contrast per arm (`contrast_table`)."""
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
    if contrast is not None and not contrast.empty:
        lines += ["", *contrast_markdown(contrast, reference, contrast_fit)]
    return "\n".join(lines) + "\n"


def contrast_markdown(contrast: pd.DataFrame, reference: str, fit: Mapping[str, Any] | None = None) -> list[str]:
    """The headline's gap table (main point), the gap's dose-response across arms (`gap_fit`) and one line per arm of
    the gap at every guidance scale (final weights)."""
    main = contrast[contrast["main"]]
    a, b = main["word_a"].iloc[0], main["word_b"].iloc[0]
    lines = [f"## Within-model gap: P(female | {a}) − P(female | {b})", "",
             "| arm | gap [CI] | p (gap = 0) | per replicate | "
             f"Δ gap vs {reference} [CI] | p | projection gap |", "|---|---|---:|---|---|---:|---:|"]
    for _, r in main.iterrows():
        diff = ("" if r["arm"] == reference else
                f"{r['diff_vs_reference']:+.3f} [{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}]")
        lines.append(f"| {r['arm']} | {r['gap']:+.3f} [{r['gap_ci_low']:+.3f}, {r['gap_ci_high']:+.3f}] | "
                     f"{_p(r['gap_p_value'])} | {' '.join(f'{g:+.2f}' for g in r['replicate_gap'])} | {diff} | "
                     f"{'' if r['arm'] == reference else _p(r['diff_p_value'])} | {_fmt(r['projection_gap'], 2)} |")
    lines += ["", f"Gap intervals cover: {'; '.join(sorted(set(main['gap_covers'])))}. Δ gap: "
              f"{'; '.join(sorted(set(main['diff_covers']) - {''})) or '–'}.", ""]
    if fit is not None:
        lines += [gap_fit_sentence(fit), ""]
    final = contrast[contrast["step"] == main["step"].iloc[0]]
    if final["guidance_scale"].nunique() > 1:
        lines.append("Gap by guidance scale (final weights): " + "; ".join(
            f"{arm} " + ", ".join(f"w{w:g} {g:+.3f}" for w, g in
                                  sorted(zip(part["guidance_scale"], part["gap"])))
            for arm, part in final.groupby("arm", sort=False)) + ".")
    return lines


def _data_uri(path: str | os.PathLike) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def landing_rst(summary: pd.DataFrame, fit: Mapping[str, Any], reference: str, figures: Sequence[str],
                contrast: pd.DataFrame | None = None, contrast_fit: Mapping[str, Any] | None = None) -> str:
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
    if contrast is not None and not contrast.empty:
        cm = contrast[contrast["main"]]
        lines += [f"Within-model gap P(female | {cm['word_a'].iloc[0]}) − P(female | {cm['word_b'].iloc[0]}):", ""]
        for _, r in cm.iterrows():
            diff = ("" if r["arm"] == reference else
                    f"; vs {reference} {r['diff_vs_reference']:+.3f} [{r['diff_ci_low']:+.3f}, "
                    f"{r['diff_ci_high']:+.3f}], p {_p(r['diff_p_value'])}")
            lines.append(f"- {r['arm']}: {r['gap']:+.3f} [{r['gap_ci_low']:+.3f}, {r['gap_ci_high']:+.3f}]{diff}")
        lines += ["", f"Gap intervals cover: {'; '.join(sorted(set(cm['gap_covers'])))}.", ""]
        if contrast_fit is not None:
            lines += [gap_fit_sentence(contrast_fit), ""]
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
    contrast_words: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rule experiment_summary: read every model's audit (rule experiment_audit) and every model's embedding bias
    table, write summary (.parquet), csv, markdown, dose-response fit (.json), the landing-page .rst, the four
    figures and, with `contrast_words`, the within-model gap table (contrast .parquet), its figure (gap .png) and the
    gap's dose-response across arms (key "gap" of the fit .json). Nothing is kept unless everything was written."""
    import matplotlib.pyplot as plt

    from biasdiff.artifacts.tables import read_table
    from biasdiff.experiment.figures import (arm_bars, dose_response_figure, gap_figure, guidance_figure,
                                             training_length_figure)
    from biasdiff.io import all_or_nothing, atomic_path, save_figure, write_json, write_parquet

    table = pd.concat([read_table(p, AUDIT_COLUMNS, "experiment_audit") for p in audits], ignore_index=True)
    projections = {key: projection_of(read_table(p, ("space", "word", "gender_projection"), "embed_words"))
                   for key, p in biases.items()}
    design_frame = pd.DataFrame(list(design))
    transforms = dict(zip(design_frame["arm"], design_frame["transform"]))
    paired = paired_arms(design_frame, reference)
    summary = summarise(table, projections, transforms, reference, calibration_words, confidence, paired)
    fit = dose_response_fit(summary, table, confidence)
    contrast = (contrast_table(table, projections, transforms, reference, contrast_words, confidence, paired)
                if contrast_words else None)
    contrast_fit = gap_fit(contrast, confidence) if contrast is not None else None
    figures = {"bars": arm_bars(summary), "dose_response": dose_response_figure(summary, fit),
               "guidance": guidance_figure(summary), "training_length": training_length_figure(summary)}
    if contrast is not None:
        figures["gap"] = gap_figure(contrast, contrast_fit)
    names = ["table", "csv", "markdown", "fit", "landing", *figures, *(["contrast"] if contrast is not None else [])]
    try:
        with all_or_nothing([outputs[k] for k in names]):
            write_parquet(summary, outputs["table"])
            if contrast is not None:
                write_parquet(contrast, outputs["contrast"])
            with atomic_path(outputs["csv"]) as tmp:
                summary.drop(columns=["replicate_p_female"]).to_csv(tmp, index=False, float_format="%.4f")
            for name, fig in figures.items():
                save_figure(fig, outputs[name])
            write_json({**fit, "reference": reference, "design": list(design),
                        **({"gap": contrast_fit} if contrast_fit is not None else {})}, outputs["fit"])
            markdown = headline_markdown(summary, fit, reference, design_frame, contrast, contrast_fit)
            with atomic_path(outputs["markdown"]) as tmp:
                tmp.write_text(markdown)
            with atomic_path(outputs["landing"]) as tmp:
                shown = [outputs["bars"], outputs["dose_response"], *([outputs["gap"]] if contrast is not None else [])]
                tmp.write_text(landing_rst(summary, fit, reference, shown, contrast, contrast_fit))
    finally:
        for fig in figures.values():
            plt.close(fig)
    log.info("%s", markdown)
    return summary
