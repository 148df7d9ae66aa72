"""Snakemake adapter: ScoreDecomp and ELBO gender labels of each word's samples, beside the classifier audit, and
the three instruments' agreement (Cohen's κ per word)."""

from biasdiff.logs import setup_logging
from biasdiff.model.directory import model_dir_of
from biasdiff.scoredecomp.stage import run_scoredecomp_samples

setup_logging(snakemake.log[0])
run_scoredecomp_samples(
    model_dir=model_dir_of(snakemake.input.model),
    conditioning=snakemake.input.conditioning,
    sample_images=dict(zip(snakemake.params.words, snakemake.input.samples)),
    classifier_audit=snakemake.input.classifier_audit,
    classifier_labels=snakemake.input.classifier_labels,
    outputs=dict(snakemake.output.items()),
    settings=dict(snakemake.params.scoredecomp),
)
