"""Snakemake adapter: StableBias embedding bias vs output bias (tables, regression, scatter plot)."""

from biasdiff.logs import setup_logging
from biasdiff.stablebias.stage import run_stablebias

setup_logging(snakemake.log[0])
run_stablebias(
    settings=dict(snakemake.params.stablebias),
    embedding_source=dict(snakemake.params.embedding_source),
    outputs=dict(snakemake.output.items()),
)
