"""Snakemake adapter: the per-word audit of the sampled images (table, headline, figures)."""

from pathlib import Path

from biasdiff.audit.sample_audit import run_audit
from biasdiff.logs import setup_logging

setup_logging(snakemake.log[0])
run_audit(
    samples=dict(zip(snakemake.params.words, snakemake.input.samples)),
    manifest=snakemake.input.manifest,
    classifier_dir=Path(snakemake.input.weights).parent,
    classifier_metrics=snakemake.input.metrics,
    embedding_bias=snakemake.input.embedding_bias,
    sdedit=snakemake.input.sdedit,
    outputs=dict(snakemake.output.items()),
    settings=dict(snakemake.params.audit),
)
