"""Snakemake adapter: the attribute classifier's reading of every sample of one experiment model."""

from pathlib import Path

from biasdiff.audit.model_audit import run_model_audit
from biasdiff.logs import setup_logging

setup_logging(snakemake.log[0])
points = list(snakemake.params.points)
words = list(snakemake.params.words)
keys = [(p["id"], w) for p in points for w in words]  # the order rules/helpers_experiment.smk lists the inputs in
run_model_audit(
    samples=dict(zip(keys, snakemake.input.samples)),
    points=points,
    classifier_dir=Path(snakemake.input.weights).parent,
    classifier_metrics=snakemake.input.metrics,
    sdedit=snakemake.input.sdedit,
    arm=snakemake.wildcards.arm,
    rep=int(snakemake.wildcards.rep),
    output=snakemake.output.table,
    settings=dict(snakemake.params.audit),
)
