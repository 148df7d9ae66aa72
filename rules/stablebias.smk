# StableBias audit: prompt-embedding gender bias vs output-distribution bias over the 150 StableBias professions
# (word-vector projection from embedding.source, text-encoder cosine ratio; Fair Diffusion's published table and
# optional CLIP zero-shot labels of a StableBias image dataset); regression, scatter plot.
# Priority: it runs first, beside synthesis. Still running when the manifest is written, it would leave one core
# free, the attribute classifier would take it, and training (2 cores, the critical path) would wait for both.


rule stablebias_audit:
    input:
        **stablebias_inputs(),
    output:
        **reported("stablebias", stablebias_outputs()),
    log:
        results("logs/stablebias_audit.log"),
    priority: 5
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=stablebias_gpus(),
    params:
        stablebias=config["stablebias"],
        embedding_source=config["embedding"]["source"],
        code=script_code("stablebias_audit"),
    script:
        "../scripts/stablebias_audit.py"
