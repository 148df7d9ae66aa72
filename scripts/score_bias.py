"""Snakemake adapter: score-space gender bias of each word, per timestep, on real images."""

from biasdiff.logs import setup_logging
from biasdiff.model.directory import model_dir_of
from biasdiff.scoredecomp.stage import run_score_bias

setup_logging(snakemake.log[0])
run_score_bias(
    model_dir=model_dir_of(snakemake.input.model),
    conditioning=snakemake.input.conditioning,
    manifest=snakemake.input.manifest,
    images=snakemake.input.images,
    outputs=dict(snakemake.output.items()),
    settings=dict(snakemake.params.scoredecomp),
)
