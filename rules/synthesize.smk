# Stage 1: synthesize. One job per (prompt, shard); each writes one Parquet file atomically.


rule synthesize_shard:
    output:
        shard=results("synth/{prompt}/shard-{shard}.parquet"),
    log:
        results("logs/synthesize/{prompt}/shard-{shard}.log"),
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        gpu=synth_gpus(),
        mem_mb=2000,
        runtime=60,
    params:
        shard=shard_params,
        code=script_code("synthesize_shard"),
    script:
        "../scripts/synthesize_shard.py"
