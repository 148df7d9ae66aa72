# FairFace audit: ScoreDecomp (+ ELBO baseline) accuracy for gender (and race) with the configured score model.
# fairface.root null: a FairFace-format fixture is built from the manifest's labelled procedural people and audited
# with the own DDPM, offline.


rule fairface_fixture:
    input:
        manifest=results("manifest/images.parquet"),
        array=manifest_array,
    output:
        directory(results("fairface/fixture")),
    log:
        results("logs/fairface_fixture.log"),
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        max_per_split=config["fairface"]["fixture_max_per_split"],
        code=script_code("fairface_fixture"),
    script:
        "../scripts/fairface_fixture.py"


rule fairface_audit:
    input:
        unpack(fairface_inputs),
    output:
        **reported("fairface", fairface_outputs()),
    log:
        results("logs/fairface_audit.log"),
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1 if config["fairface"]["score_model"]["kind"] == "diffusers" else 0,
    params:
        fairface=config["fairface"],
        root=config["fairface"]["root"],
        image_size=config["fairface"]["image_size"] or config["image_size"],
        code=script_code("fairface_audit"),
    script:
        "../scripts/fairface_audit.py"
