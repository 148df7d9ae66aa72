"""Snakemake adapter: cosine of the model's outputs between conditions per timestep and across timesteps."""

from biasdiff.logs import setup_logging
from biasdiff.scoredecomp.stage import run_similarity

setup_logging(snakemake.log[0])
run_similarity(
    model_config=snakemake.input.model,
    conditioning=snakemake.input.conditioning,
    manifest=snakemake.input.manifest,
    images=snakemake.input.images,
    outputs=dict(snakemake.output.items()),
    params=dict(snakemake.params.scoredecomp),
)
