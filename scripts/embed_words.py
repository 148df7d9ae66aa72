"""Snakemake adapter: conditioning-word vectors, JL projection and bias/distortion diagnostics."""

from biasdiff.embed import embed_words
from biasdiff.logs import setup_logging

setup_logging(snakemake.log[0])
embed_words(
    conditioning=snakemake.output.conditioning,
    vectors=snakemake.output.vectors,
    bias=snakemake.output.bias,
    weat=snakemake.output.weat,
    distortion=snakemake.output.distortion,
    figure=snakemake.output.figure,
    embedding=dict(snakemake.params.embedding),
    words=list(snakemake.params.words),
)
