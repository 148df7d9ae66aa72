"""Snakemake adapter: score-space gender bias of each word, per timestep, on real images."""

from biasdiff.logs import setup_logging
from biasdiff.scoredecomp.stage import run_score_bias

setup_logging(snakemake.log[0])
run_score_bias(
    model_config=snakemake.input.model,
    conditioning=snakemake.input.conditioning,
    manifest=snakemake.input.manifest,
    images=snakemake.input.images,
    table_path=snakemake.output.table,
    figure_path=snakemake.output.figure,
    params=dict(snakemake.params.scoredecomp),
)
