"""Snakemake adapter: train (or resume) the word-conditioned DDPM {model} into results/models/{model}/."""

from biasdiff.logs import setup_logging
from biasdiff.model.directory import model_dir_of
from biasdiff.train.launch import run_train

setup_logging(snakemake.log[0])
run_train(
    num_processes=snakemake.params.train["num_processes"],
    manifest_path=snakemake.input.manifest,
    array_path=snakemake.input.images,
    conditioning_path=snakemake.input.conditioning,
    out_dir=str(model_dir_of(snakemake.output.config)),
    checkpoint_dir=snakemake.params.checkpoint_dir,
    settings=dict(snakemake.params.train),
    image_size=snakemake.params.image_size,
    prompt_words=dict(snakemake.params.prompt_words),
    code=snakemake.params.code,
    wandb_dir=snakemake.params.wandb_dir,
)
