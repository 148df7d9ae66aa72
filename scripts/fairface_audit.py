"""Snakemake adapter: ScoreDecomp / ELBO audit of a score model on FairFace (or the procedural fixture)."""

from biasdiff.fairface.stage import run_fairface
from biasdiff.logs import setup_logging
from biasdiff.model.directory import model_dir_of

setup_logging(snakemake.log[0])
run_fairface(
    settings=dict(snakemake.params.fairface),
    root=snakemake.input.get("root", snakemake.params.root),
    image_size=snakemake.params.image_size,
    outputs=dict(snakemake.output.items()),
    model_dir=model_dir_of(snakemake.input["model"]) if "model" in snakemake.input.keys() else None,
    conditioning=snakemake.input.get("conditioning"),
)
