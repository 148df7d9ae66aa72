"""Snakemake adapter: aggregate every shard into the manifest, the packed array, the counts and contact sheets."""

from biasdiff.logs import setup_logging
from biasdiff.manifest.build import run_manifest

setup_logging(snakemake.log[0])
run_manifest(
    shard_paths=list(snakemake.input.shards),
    outputs={
        "manifest": snakemake.output.manifest,
        "array": snakemake.output.array,
        "counts": snakemake.output.counts,
        "contacts": dict(zip(snakemake.params.contact_prompts, snakemake.output.contacts)),
    },
    settings=dict(snakemake.params.manifest),
)
