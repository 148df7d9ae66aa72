"""Snakemake adapter: train the attribute classifier (gender, occupation) on the labeled synthetic images."""

from biasdiff.audit.classifier import run_classifier
from biasdiff.logs import setup_logging

setup_logging(snakemake.log[0])
run_classifier(
    manifest=snakemake.input.manifest,
    images=snakemake.input.images,
    outputs=dict(snakemake.output.items()),
    settings=dict(snakemake.params.classifier),
)
