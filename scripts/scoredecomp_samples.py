"""Snakemake adapter: ScoreDecomp gender proportions of each word's samples, beside the classifier audit."""

from biasdiff.logs import setup_logging
from biasdiff.scoredecomp.stage import run_sample_proportions

setup_logging(snakemake.log[0])
run_sample_proportions(
    model_config=snakemake.input.model,
    conditioning=snakemake.input.conditioning,
    sample_images=dict(zip(snakemake.params.words, snakemake.input.samples)),
    classifier_audit=snakemake.input.classifier_audit,
    out_path=snakemake.output.table,
    params=dict(snakemake.params.scoredecomp),
)
