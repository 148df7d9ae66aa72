"""Snakemake adapter: aggregate the shards into the manifest, the packed array, counts and contact sheets."""

from biasdiff.logs import setup_logging
from biasdiff.manifest import build_manifest

setup_logging(snakemake.log[0])
build_manifest(
    shard_paths=list(snakemake.input.shards),
    params=dict(snakemake.params.manifest),
    manifest_path=snakemake.output.manifest,
    array_path=snakemake.output.array,
    counts_path=snakemake.output.counts,
    contact_paths=dict(zip(snakemake.params.contact_prompts, snakemake.output.contacts)),
)
