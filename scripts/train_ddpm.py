"""Snakemake adapter: train (or resume) the word-conditioned DDPM {model} into results/models/{model}/."""

from pathlib import Path

from biasdiff.logs import setup_logging
from biasdiff.train.launch import run_training

setup_logging(snakemake.log[0])
run_training(
    num_processes=snakemake.params.train["num_processes"],
    manifest_path=snakemake.input.manifest,
    array_path=snakemake.input.images,
    conditioning_path=snakemake.input.conditioning,
    out_dir=str(Path(snakemake.output.config).parent),
    checkpoint_dir=snakemake.params.checkpoint_dir,
    train_cfg=dict(snakemake.params.train),
    image_size=snakemake.params.image_size,
    prompt_words=dict(snakemake.params.prompt_words),
    code=snakemake.params.code,
    wandb_dir=snakemake.params.wandb_dir,
)
