# Stage 6a: audit of what the model draws. An attribute classifier trained on the labeled synthetic images labels
# every sample; per word: P(female) with a Wilson CI against the training data's P(female | word) and the word's
# embedding bias.
# Priorities after training: the classifier (longest single job) and sampling first, then the headline audit and
# ScoreDecomp of the samples, which wait for both; the independent score audits fill the cores last.


rule train_attribute_classifier:
    input:
        manifest=results("manifest/images.parquet"),
        images=manifest_array,
    output:
        **classifier_outputs(),
    log:
        results("logs/train_attribute_classifier.log"),
    priority: 3
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        classifier=config["audit"]["classifier"],
        code=script_code("train_classifier"),
    script:
        "../scripts/train_classifier.py"


rule audit_samples:
    input:
        **audit_inputs(),
    output:
        **reported("audit", audit_outputs()),
    log:
        results("logs/audit_samples.log"),
    priority: 1
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        words=SAMPLE_WORDS,
        audit=audit_params(),
        code=script_code("audit_samples"),
    script:
        "../scripts/audit_samples.py"


# The instrument's readout per context (occupation) on held-out labelled images: detectability ladders, and the
# classifier's sensitivity/specificity on SDEdited (sample-like) images, which correct the audit's P(female).
rule readout_detectability:
    input:
        **readout_inputs(),
    output:
        **reported("audit", readout_outputs("detectability")),
    log:
        results("logs/readout_detectability.log"),
    priority: 1
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        readout=readout_params("detectability"),
        code=script_code("readout_detectability"),
    script:
        "../scripts/readout_detectability.py"


rule readout_sdedit:
    input:
        **readout_inputs(),
    output:
        **reported("audit", readout_outputs("sdedit")),
    log:
        results("logs/readout_sdedit.log"),
    priority: 2
    conda:
        "../envs/biasdiff-cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        readout=readout_params("sdedit"),
        code=script_code("readout_sdedit"),
    script:
        "../scripts/readout_sdedit.py"
