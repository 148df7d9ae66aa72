"""Snakemake adapter: Lipschitz ratio of the score in the condition, per pair of words and timestep."""

from biasdiff.logs import setup_logging
from biasdiff.model.directory import model_dir_of
from biasdiff.scoredecomp.stage import run_lipschitz_diagnostic

setup_logging(snakemake.log[0])
run_lipschitz_diagnostic(
    model_dir=model_dir_of(snakemake.input.model),
    conditioning=snakemake.input.conditioning,
    manifest=snakemake.input.manifest,
    images=snakemake.input.images,
    outputs=dict(snakemake.output.items()),
    settings=dict(snakemake.params.scoredecomp),
)
