"""The within-model gap (experiment.contrast) and the pairing of arms: a gap read inside each model from hand-made
audits, each arm's gap minus the reference's paired by replicate only where the seeds are shared, and the config's
contrast words checked before any job."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from biasdiff.config import load_config
from biasdiff.errors import ConfigError
from biasdiff.experiment.figures import gap_figure
from biasdiff.experiment.summary import contrast_markdown, contrast_table, gap_fit, paired_arms

ROOT = Path(__file__).resolve().parents[1]


def _audits(counts):
    """counts: {(arm, rep): {word: n_female}} of 200 samples each, one main point."""
    rows = []
    for (arm, rep), words in counts.items():
        for word, k in words.items():
            rows.append({"arm": arm, "rep": rep, "point": "w3-s800", "guidance_scale": 3.0, "step": 800,
                         "main": True, "word": word, "n": 200, "n_female": k, "frac_female": k / 200})
    return pd.DataFrame(rows)


COUNTS = {("raw", 0): {"nurse": 144, "philosopher": 16}, ("raw", 1): {"nurse": 158, "philosopher": 70},
          ("raw", 2): {"nurse": 142, "philosopher": 8},
          ("flat", 0): {"nurse": 90, "philosopher": 80}, ("flat", 1): {"nurse": 150, "philosopher": 120},
          ("flat", 2): {"nurse": 100, "philosopher": 96}}


def _design(seeds_flat):
    return pd.DataFrame([{"arm": "raw", "rep": r, "train_seed": s} for r, s in enumerate([0, 11, 22])]
                        + [{"arm": "flat", "rep": r, "train_seed": s} for r, s in enumerate(seeds_flat)])


def test_arms_are_paired_only_where_every_replicate_shares_its_seed():
    assert paired_arms(_design([0, 11, 22]), "raw") == {"flat"}
    assert paired_arms(_design([5, 11, 22]), "raw") == set()  # an arm with its own train.seed
    assert paired_arms(_design([0, 11]), "raw") == set()


def test_gap_is_read_inside_each_model_and_compared_with_the_reference_by_replicate():
    table = contrast_table(_audits(COUNTS), {}, {"raw": "none", "flat": "hard-debias"}, "raw",
                           ["nurse", "philosopher"], paired={"flat"}).set_index("arm")
    raw_gaps = [(144 - 16) / 200, (158 - 70) / 200, (142 - 8) / 200]
    flat_gaps = [10 / 200, 30 / 200, 4 / 200]
    assert table.loc["raw", "replicate_gap"] == pytest.approx(raw_gaps)
    assert table.loc["raw", "gap"] == pytest.approx(sum(raw_gaps) / 3)
    assert table.loc["flat", "diff_vs_reference"] == pytest.approx((sum(flat_gaps) - sum(raw_gaps)) / 3)
    assert "paired t on 3 replicate pairs" in table.loc["flat", "diff_covers"]
    assert table.loc["flat", "diff_ci_high"] < 0  # every replicate's gap shrank a lot
    assert math.isnan(table.loc["raw", "diff_vs_reference"]) and math.isnan(table.loc["raw", "projection_gap"])
    text = "\n".join(contrast_markdown(table.reset_index(), "raw"))
    assert "P(female | nurse) − P(female | philosopher)" in text and "| flat | +0.073" in text
    fig = gap_figure(table.reset_index())
    lines = [ln for ln in fig.axes[0].lines if (ln.get_gid() or "").startswith("rep-")]
    assert len(lines) == 3  # replicate k of raw joined to replicate k of flat
    assert sorted(ln.get_ydata()[1] - ln.get_ydata()[0] for ln in lines) == pytest.approx(
        sorted(f - r for f, r in zip([10 / 200, 30 / 200, 4 / 200], [128 / 200, 88 / 200, 134 / 200])))


def test_gap_dose_response_fits_each_arms_gap_against_its_projection_gap():
    # three arms whose vectors differ only in the gender projection gap of nurse and philosopher: +0.6, 0, -0.6
    counts = {**COUNTS, **{("flip", r): {"nurse": k, "philosopher": 100} for r, k in enumerate([60, 120, 70])}}
    projections = {}
    for (arm, rep) in counts:
        half = {"raw": 0.3, "flat": 0.0, "flip": -0.3}[arm]
        projections[(arm, rep)] = {"nurse": half, "philosopher": -half}
    table = contrast_table(_audits(counts), projections, {}, "raw", ["nurse", "philosopher"], paired={"flat", "flip"})
    fit = gap_fit(table)
    gaps = table.set_index("arm")["gap"]
    # an independent derivation: least squares through the three (projection gap, gap) points by the normal equations
    x = [0.6, 0.0, -0.6]
    y = [gaps["raw"], gaps["flat"], gaps["flip"]]
    mx, my = sum(x) / 3, sum(y) / 3
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)
    assert fit["slope"] == pytest.approx(slope) and fit["intercept"] == pytest.approx(my - slope * mx)
    assert fit["n_arms"] == 3 and fit["words"] == ["nurse", "philosopher"]
    assert [p["arm"] for p in fit["points"]] == ["raw", "flat", "flip"]
    text = "\n".join(contrast_markdown(table, "raw", fit))
    assert f"Gap dose–response over 3 arms: the gap changes {slope:+.2f}" in text
    fig = gap_figure(table, fit)
    assert len(fig.axes) == 2
    line = next(ln for ln in fig.axes[1].lines if ln.get_gid() == "gap-fit")
    xs, ys = line.get_xdata(), line.get_ydata()
    assert (ys[-1] - ys[0]) / (xs[-1] - xs[0]) == pytest.approx(slope)
    # two arms (the demo's design) or arms without projections: no slope, one panel, and the summary says why
    two = contrast_table(_audits(COUNTS), projections, {}, "raw", ["nurse", "philosopher"], paired={"flat"})
    none = gap_fit(two)
    assert math.isnan(none["slope"]) and len(gap_figure(two, none).axes) == 1
    assert "Gap dose–response: not estimable (2 arm(s)" in "\n".join(contrast_markdown(two, "raw", none))


def test_contrast_words_must_be_two_different_conditioning_words(tmp_path):
    for value in ("[nurse, doctor]", "[nurse, nurse]"):
        overlay = tmp_path / "c.yaml"
        overlay.write_text(f"experiment:\n  contrast: {value}\n")
        with pytest.raises(ConfigError, match=r"experiment.contrast: .* valid: \["):
            load_config(ROOT / "config.yaml", overlay)
