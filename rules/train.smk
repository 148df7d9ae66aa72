# Stage 4: train. A word-conditioned DDPM from scratch on the manifest's train split; every image with each of its
# prompt's words. Resumable: checkpoints live in results/checkpoints/{model}/, outside the outputs (Snakemake
# deletes the outputs of a failed job), and carry a hash of the config so a stale one is never resumed.
# Training is the critical path (priority): it starts before the attribute classifier, which then runs beside
# sampling and the score audits on the cores they leave free instead of delaying training.


rule train_ddpm:
    input:
        manifest=results("manifest/images.parquet"),
        images=manifest_array,
        conditioning=results("embeddings/conditioning.parquet"),
    output:
        **reported("train", train_outputs("{model}")),
    log:
        results("logs/train_ddpm/{model}.log"),
    wildcard_constraints:
        model=trained_model(),
    priority: 10
    conda:
        "../envs/biasdiff-cpu.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=600,
        gpu=train_gpus(),
    params:
        train=config["train"],
        image_size=config["image_size"],
        prompt_words=train_prompt_words(),
        checkpoint_dir=results("checkpoints/{model}"),
        wandb_dir=results("wandb"),
        code=script_code("train_ddpm"),
    script:
        "../scripts/train_ddpm.py"
