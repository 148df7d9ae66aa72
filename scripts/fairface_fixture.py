"""Snakemake adapter: a FairFace-format fixture (official layout) from the manifest's labelled procedural people."""

from biasdiff.fairface.fixture import run_fairface_fixture
from biasdiff.logs import setup_logging

setup_logging(snakemake.log[0])
run_fairface_fixture(
    manifest_path=snakemake.input.manifest,
    array_path=snakemake.input.array,
    outputs={"root": snakemake.output[0]},
    settings={"max_per_split": snakemake.params.max_per_split},
)
