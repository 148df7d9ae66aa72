# The experiment as a design (experiment: in the config; src/biasdiff/experiment/): embedding arms x training
# replicates. Synthesis, the manifest, the attribute classifier and the instrument's SDEdit rates are shared by
# every model; per arm and JL seed the embedding; per (arm, replicate) training, sampling at every point (guidance
# scales, training-length snapshots) and the model's audit; one summary across models. A design entry equal to
# the base config (rep-0 of an empty arm under paired seeds) reuses the workflow's own embedding, model and main
# samples. Outputs: results/experiment/{arm}/embedding-jl{jl}/, results/experiment/{arm}/rep-{rep}/{model,samples,
# audit.parquet}, results/experiment/summary.* and figures.


rule experiment_embed:
    input:
        unpack(experiment_embedding_inputs),
    output:
        **experiment_embedding_outputs(),
    log:
        results("logs/experiment_embed/{arm}-jl{jl}.log"),
    wildcard_constraints:
        arm="|".join(ARMS) or "^$",
        jl=r"\d+",
    priority: 5
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        embedding=experiment_embedding_params,
        words=conditioning_words(),
        code=script_code("embed_words"),
    script:
        "../scripts/embed_words.py"


rule experiment_train:
    input:
        manifest=results("manifest/images.parquet"),
        images=manifest_array,
        conditioning=replicate_conditioning,
    output:
        **experiment_train_outputs(),
    log:
        results("logs/experiment_train/{arm}-rep{rep}.log"),
    wildcard_constraints:
        arm="|".join(ARMS) or "^$",
        rep=r"\d+",
    priority: 9
    conda:
        "../envs/biasdiff-cpu.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=600,
        gpu=train_gpus(),
    params:
        train=replicate_train_params,
        image_size=config["image_size"],
        prompt_words=train_prompt_words(),
        checkpoint_dir=results("checkpoints/experiment/{arm}/rep-{rep}"),
        wandb_dir=results("wandb"),
        code=script_code("train_ddpm"),
    script:
        "../scripts/train_ddpm.py"


rule experiment_sample:
    input:
        model=experiment_sample_model,
        conditioning=replicate_conditioning,
    output:
        **experiment_sample_outputs(),
    log:
        results("logs/experiment_sample/{arm}-rep{rep}-{point}.log"),
    wildcard_constraints:
        arm="|".join(ARMS) or "^$",
        rep=r"\d+",
        point="|".join(p.id for p in POINTS) or "^$",
    priority: 2
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=sample_gpus(),
    params:
        point=experiment_sample_params,
        words=SAMPLE_WORDS,
        code=script_code("experiment_sample"),
    script:
        "../scripts/experiment_sample.py"


rule experiment_audit:
    input:
        unpack(experiment_audit_inputs),
    output:
        table=results("experiment/{arm}/rep-{rep}/audit.parquet"),
    log:
        results("logs/experiment_audit/{arm}-rep{rep}.log"),
    wildcard_constraints:
        arm="|".join(ARMS) or "^$",
        rep=r"\d+",
    priority: 1
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        points=experiment_points(),
        words=SAMPLE_WORDS,
        audit=audit_params(),
        code=script_code("experiment_audit"),
    script:
        "../scripts/experiment_audit.py"


rule experiment_summary:
    input:
        audits=experiment_audits(),
        biases=experiment_biases(),
        models=experiment_models,
    output:
        **reported("experiment", experiment_outputs()),
    log:
        results("logs/experiment_summary.log"),
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        **experiment_summary_params(),
        code=script_code("experiment_summary"),
    script:
        "../scripts/experiment_summary.py"
