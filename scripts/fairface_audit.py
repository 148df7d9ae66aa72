"""Snakemake adapter: ScoreDecomp / ELBO audit of a score model on FairFace (or the procedural fixture)."""

from pathlib import Path

from biasdiff.fairface.stage import run_fairface
from biasdiff.logs import setup_logging

setup_logging(snakemake.log[0])
run_fairface(
    settings=dict(snakemake.params.fairface),
    root=snakemake.input.get("root", snakemake.params.root),
    image_size=snakemake.params.image_size,
    outputs={name: snakemake.output[name] for name in ("predictions", "accuracy", "confusion", "figure")},
    model_dir=Path(snakemake.input["model"]).parent if "model" in snakemake.input.keys() else None,
    conditioning=snakemake.input.get("conditioning"),
)
