"""Snakemake adapter: the instrument's readout per context (degradation ladders)."""

from pathlib import Path

from biasdiff.audit.readout import run_detectability
from biasdiff.logs import setup_logging
from biasdiff.model.directory import model_dir_of

setup_logging(snakemake.log[0])
run_detectability(
    manifest=snakemake.input.manifest,
    images=snakemake.input.images,
    classifier_dir=Path(snakemake.input.weights).parent,
    classifier_metrics=snakemake.input.metrics,
    model_dir=model_dir_of(snakemake.input.model),
    conditioning=snakemake.input.conditioning,
    outputs=dict(snakemake.output.items()),
    settings=dict(snakemake.params.readout),
)
