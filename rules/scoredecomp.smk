# Stage 6b: score-based audits of the own DDPM (results/audit/): ScoreDecomp vs the ELBO diffusion classifier on
# held-out labeled images, ScoreDecomp proportions of each word's samples, score-space bias per word, score
# similarity, and the Lipschitz-in-the-condition diagnostic. One rule per entry of SCORE_AUDITS
# (rules/helpers_audits.smk), from which its inputs, outputs, log, priority, resources and params are derived; the
# rule names its script (and hashes it: code=script_code(<script>)).


rule scoredecomp_accuracy:
    input:
        **scoredecomp_inputs("accuracy"),
    output:
        **reported("scoredecomp", scoredecomp_outputs("accuracy")),
    log:
        scoredecomp_log("accuracy"),
    priority: scoredecomp_priority("accuracy")
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        **scoredecomp_resources("accuracy"),
    params:
        **scoredecomp_params("accuracy"),
        code=script_code("scoredecomp_accuracy"),
    script:
        "../scripts/scoredecomp_accuracy.py"


rule scoredecomp_samples:
    input:
        **scoredecomp_inputs("samples"),
    output:
        **reported("scoredecomp", scoredecomp_outputs("samples")),
    log:
        scoredecomp_log("samples"),
    priority: scoredecomp_priority("samples")
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        **scoredecomp_resources("samples"),
    params:
        **scoredecomp_params("samples"),
        code=script_code("scoredecomp_samples"),
    script:
        "../scripts/scoredecomp_samples.py"


rule score_bias:
    input:
        **scoredecomp_inputs("score_bias"),
    output:
        **reported("scoredecomp", scoredecomp_outputs("score_bias")),
    log:
        scoredecomp_log("score_bias"),
    priority: scoredecomp_priority("score_bias")
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        **scoredecomp_resources("score_bias"),
    params:
        **scoredecomp_params("score_bias"),
        code=script_code("score_bias"),
    script:
        "../scripts/score_bias.py"


rule score_similarity:
    input:
        **scoredecomp_inputs("similarity"),
    output:
        **reported("scoredecomp", scoredecomp_outputs("similarity")),
    log:
        scoredecomp_log("similarity"),
    priority: scoredecomp_priority("similarity")
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        **scoredecomp_resources("similarity"),
    params:
        **scoredecomp_params("similarity"),
        code=script_code("score_similarity"),
    script:
        "../scripts/score_similarity.py"


rule lipschitz_diagnostic:
    input:
        **scoredecomp_inputs("lipschitz"),
    output:
        **reported("scoredecomp", scoredecomp_outputs("lipschitz")),
    log:
        scoredecomp_log("lipschitz"),
    priority: scoredecomp_priority("lipschitz")
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        **scoredecomp_resources("lipschitz"),
    params:
        **scoredecomp_params("lipschitz"),
        code=script_code("lipschitz_diagnostic"),
    script:
        "../scripts/lipschitz_diagnostic.py"
