"""Snakemake adapter: N guided samples of one word from one trained model (results/samples/{model}/{word}.*)."""

from biasdiff.logs import setup_logging
from biasdiff.model.directory import model_dir_of
from biasdiff.sample.stage import run_sample

setup_logging(snakemake.log[0])
run_sample(
    model_dir=model_dir_of(snakemake.input.model),
    conditioning=snakemake.input.conditioning,
    word=snakemake.wildcards.word,
    outputs=dict(snakemake.output.items()),
    settings=dict(snakemake.params.sample),
)
