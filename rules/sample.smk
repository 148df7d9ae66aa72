# Stage 5: sample. N classifier-free-guided images per conditioning word (the union of prompts.*.words, plus the
# null condition `null`) from the trained model train.model; DDPM ancestral or DDIM (sample.sampler).


rule sample_word:
    input:
        model=sample_model_input,
        conditioning=results("embeddings/conditioning.parquet"),
    output:
        **reported("sample", sample_outputs("{model}", "{word}")),
    log:
        results("logs/sample_word/{model}/{word}.log"),
    wildcard_constraints:
        model=trained_model(),
        word="|".join(SAMPLE_WORDS),
    priority: 2
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=sample_gpus(),
    params:
        sample=config["sample"],
        code=script_code("sample_word"),
    script:
        "../scripts/sample_word.py"
