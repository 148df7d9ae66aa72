"""Snakemake adapter: the experiment's summary across arms and replicates (tables, headline, figures)."""

from biasdiff.experiment.summary import run_summary
from biasdiff.logs import setup_logging

setup_logging(snakemake.log[0])
design = list(snakemake.params.design)
run_summary(
    audits=list(snakemake.input.audits),
    biases={(d["arm"], int(d["rep"])): path for d, path in zip(design, snakemake.input.biases)},
    design=design,
    reference=snakemake.params.reference,
    calibration_words=list(snakemake.params.calibration_words),
    confidence=float(snakemake.params.confidence),
    outputs=dict(snakemake.output.items()),
    contrast_words=snakemake.params.contrast_words,
)
