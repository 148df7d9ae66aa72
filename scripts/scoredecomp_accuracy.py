"""Snakemake adapter: ScoreDecomp and ELBO gender accuracy of the own DDPM on held-out labeled images."""

from biasdiff.logs import setup_logging
from biasdiff.scoredecomp.stage import run_classifier_audit

setup_logging(snakemake.log[0])
run_classifier_audit(
    model_config=snakemake.input.model,
    conditioning=snakemake.input.conditioning,
    manifest=snakemake.input.manifest,
    images=snakemake.input.images,
    accuracy_path=snakemake.output.accuracy,
    predictions_path=snakemake.output.predictions,
    figure_path=snakemake.output.figure,
    params=dict(snakemake.params.scoredecomp),
)
