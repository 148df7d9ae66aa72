"""Snakemake adapter: N guided samples of one word ({word}, or `null`) from one trained model."""

from pathlib import Path

from biasdiff.logs import setup_logging
from biasdiff.sample.stage import sample_word

setup_logging(snakemake.log[0])
sample_word(
    model_dir=Path(snakemake.input.model).parent,
    conditioning_path=snakemake.input.conditioning,
    word=snakemake.wildcards.word,
    images_path=snakemake.output.images,
    meta_path=snakemake.output.meta,
    grid_path=snakemake.output.grid,
    params=dict(snakemake.params.sample),
)
