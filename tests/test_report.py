"""`snakemake --report` on the finished smoke run: one self-contained HTML file holding every stage's figures, with
captions; every stage a rule reports under has a caption file."""

from __future__ import annotations

import re

import pytest

from workflow_run import ROOT, snakemake

pytestmark = pytest.mark.workflow


def reported_stages() -> set[str]:
    """Stages (report categories) the rules use: reported("<stage>", ...) / report_entry("<stage>", ...)."""
    stages = set()
    for smk in (ROOT / "rules").glob("*.smk"):
        stages |= set(re.findall(r'(?:reported|report_entry)\(\s*"(\w+)"', smk.read_text()))
    return stages


def test_every_reported_stage_has_a_caption():
    stages = reported_stages()
    assert {"manifest", "embed"} <= stages
    missing = sorted(s for s in stages if not (ROOT / "report" / f"{s}.rst").is_file())
    assert not missing, f"no report/<stage>.rst for {missing}"
    assert (ROOT / "report/workflow.rst").is_file()


def test_report_of_smoke_run_is_one_html_file(copy_workdir, tmp_path):
    workdir = copy_workdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = snakemake(workdir, "--report", str(out_dir / "report.html"), timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    assert [p.name for p in out_dir.iterdir()] == ["report.html"]
    html = (out_dir / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "Bias begets bias" in html  # the workflow description (report/workflow.rst)
    # Every stage that reports something and ran in the smoke DAG shows up as a category.
    ran = {p.name for p in (workdir / "results").iterdir()}
    for stage, artifacts in {"manifest": "manifest", "embed": "embeddings", "train": "models", "sample": "samples"}.items():
        if artifacts in ran and stage in reported_stages():
            assert stage in html, f"category {stage} missing from the report"
    # The contact sheet caption is rendered (captions are files under report/).
    assert "Contact sheet of one prompt" in html
