"""Snakemake adapter: render one shard of one prompt."""

from biasdiff.logs import setup_logging
from biasdiff.synth.stage import run_synthesis

setup_logging(snakemake.log[0])
run_synthesis(outputs=dict(snakemake.output.items()), settings=dict(snakemake.params.shard))
