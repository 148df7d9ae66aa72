"""Snakemake adapter: every word of one sampling point (guidance scale, training step) of one experiment model."""

from biasdiff.sample.points import run_point
from biasdiff.logs import setup_logging
from biasdiff.model.directory import model_dir_of

setup_logging(snakemake.log[0])
run_point(
    model_dir=model_dir_of(snakemake.input.model),
    conditioning=snakemake.input.conditioning,
    words=list(snakemake.params.words),
    outputs={key: list(snakemake.output[key]) for key in ("images", "meta", "grid")},
    settings=dict(snakemake.params.point["sample"]),
    snapshot=snakemake.params.point["snapshot"],
)
