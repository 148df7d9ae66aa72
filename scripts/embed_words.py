"""Snakemake adapter: conditioning-word vectors, JL projection and bias/distortion diagnostics."""

from biasdiff.embed.stage import run_embed
from biasdiff.logs import setup_logging

setup_logging(snakemake.log[0])
run_embed(
    outputs=dict(snakemake.output.items()),
    settings=dict(snakemake.params.embedding),
    words=list(snakemake.params.words),
)
