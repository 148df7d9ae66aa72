"""Snakemake adapter: render one shard of one prompt."""

from biasdiff.logs import setup_logging
from biasdiff.synth.stage import synthesize_shard

setup_logging(snakemake.log[0])
synthesize_shard(snakemake.output.shard, dict(snakemake.params.shard))
