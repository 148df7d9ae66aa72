"""Snakemake adapter: train the attribute classifier (gender, occupation) on the labeled synthetic images."""

from pathlib import Path

from biasdiff.audit.classifier import run_train_classifier
from biasdiff.logs import setup_logging

setup_logging(snakemake.log[0])
run_train_classifier(
    manifest=snakemake.input.manifest,
    images=snakemake.input.images,
    out_dir=Path(snakemake.output.weights).parent,
    out_metrics=snakemake.output.metrics,
    settings=dict(snakemake.params.classifier),
)
