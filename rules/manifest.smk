# Stage 2: manifest. Aggregates every shard; writes the metadata table, the packed training array, counts, contact sheets.


rule build_manifest:
    input:
        shards=shard_files(),
    output:
        manifest=results("manifest/images.parquet"),
        array=results("manifest/images.npy"),
        counts=report_entry("manifest", "counts", results("manifest/counts.csv")),
        contacts=report_entry(
            "manifest",
            "contacts",
            expand(results("manifest/contact_{prompt}.png"), prompt=PROMPTS),
        ),
    log:
        results("logs/build_manifest.log"),
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        manifest=manifest_params(),
        contact_prompts=PROMPTS,
        code=script_code("build_manifest"),
    script:
        "../scripts/build_manifest.py"
