"""Snakemake adapter: Lipschitz ratio of the score in the condition, per pair of words and timestep."""

from biasdiff.logs import setup_logging
from biasdiff.scoredecomp.stage import run_lipschitz

setup_logging(snakemake.log[0])
run_lipschitz(
    model_config=snakemake.input.model,
    conditioning=snakemake.input.conditioning,
    manifest=snakemake.input.manifest,
    images=snakemake.input.images,
    ratios_path=snakemake.output.ratios,
    summary_path=snakemake.output.summary,
    figure_path=snakemake.output.figure,
    params=dict(snakemake.params.scoredecomp),
)
