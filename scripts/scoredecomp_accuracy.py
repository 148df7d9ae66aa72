"""Snakemake adapter: ScoreDecomp and ELBO gender accuracy of the own DDPM on held-out labeled images."""

from biasdiff.logs import setup_logging
from biasdiff.model.directory import model_dir_of
from biasdiff.scoredecomp.stage import run_scoredecomp_accuracy

setup_logging(snakemake.log[0])
run_scoredecomp_accuracy(
    model_dir=model_dir_of(snakemake.input.model),
    conditioning=snakemake.input.conditioning,
    manifest=snakemake.input.manifest,
    images=snakemake.input.images,
    outputs=dict(snakemake.output.items()),
    settings=dict(snakemake.params.scoredecomp),
)
