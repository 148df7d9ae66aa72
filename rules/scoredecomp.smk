# Stage 6b: score-based audits of the own DDPM (results/audit/): ScoreDecomp vs the ELBO diffusion classifier on
# held-out labeled images, ScoreDecomp proportions of each word's samples, score-space bias per word, score
# similarity, and the Lipschitz-in-the-condition diagnostic. Helpers: scoredecomp_* in rules/common.smk.


rule scoredecomp_accuracy:
    input:
        **scoredecomp_real_inputs(),
    output:
        **reported("scoredecomp", scoredecomp_outputs("accuracy")),
    log:
        results("logs/scoredecomp/accuracy.log"),
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=scoredecomp_gpus(),
    params:
        scoredecomp=scoredecomp_params("accuracy"),
        code=script_code("scoredecomp_accuracy"),
    script:
        "../scripts/scoredecomp_accuracy.py"


rule scoredecomp_samples:
    input:
        **scoredecomp_sample_inputs(),
    output:
        **reported("scoredecomp", scoredecomp_outputs("samples")),
    log:
        results("logs/scoredecomp/samples.log"),
    priority: 1
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=scoredecomp_gpus(),
    params:
        scoredecomp=scoredecomp_params("samples"),
        words=SAMPLE_WORDS,
        code=script_code("scoredecomp_samples"),
    script:
        "../scripts/scoredecomp_samples.py"


rule score_bias:
    input:
        **scoredecomp_real_inputs(),
    output:
        **reported("scoredecomp", scoredecomp_outputs("score_bias")),
    log:
        results("logs/scoredecomp/score_bias.log"),
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=scoredecomp_gpus(),
    params:
        scoredecomp=scoredecomp_params("score_bias"),
        code=script_code("score_bias"),
    script:
        "../scripts/score_bias.py"


rule score_similarity:
    input:
        **scoredecomp_real_inputs(),
    output:
        **reported("scoredecomp", scoredecomp_outputs("similarity")),
    log:
        results("logs/scoredecomp/similarity.log"),
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=scoredecomp_gpus(),
    params:
        scoredecomp=scoredecomp_params("similarity"),
        code=script_code("score_similarity"),
    script:
        "../scripts/score_similarity.py"


rule lipschitz_diagnostic:
    input:
        **scoredecomp_real_inputs(),
    output:
        **reported("scoredecomp", scoredecomp_outputs("lipschitz")),
    log:
        results("logs/scoredecomp/lipschitz.log"),
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=scoredecomp_gpus(),
    params:
        scoredecomp=scoredecomp_params("lipschitz"),
        code=script_code("lipschitz_diagnostic"),
    script:
        "../scripts/lipschitz_diagnostic.py"
