# Stage 3: embed. Conditioning-word vectors from the configured source, seeded JL projection to embedding.dim,
# optional bias transform; bias (gender direction, WEAT) and distortion diagnostics before and after projection.
# Priority: training needs it; see rules/stablebias.smk for why the early one-core jobs run before synthesis.


rule embed_words:
    input:
        **embedding_inputs(),
    output:
        **reported("embed", embedding_outputs()),
    log:
        results("logs/embed_words.log"),
    priority: 5
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        embedding=embedding_params()["embedding"],
        words=embedding_params()["words"],
        code=script_code("embed_words"),
    script:
        "../scripts/embed_words.py"
