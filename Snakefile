# bias-begets-bias: balanced synthetic people -> word-embedding conditioning -> DDPM -> per-word samples -> audits.
# This file is a table of contents; helpers live in rules/common.smk and rules/helpers_*.smk, one .smk per stage.
from snakemake.utils import min_version

min_version("9.0")


include: "rules/preflight.smk"


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/helpers_data.smk"
include: "rules/helpers_model.smk"
include: "rules/helpers_audits.smk"
include: "rules/helpers_experiment.smk"
include: "rules/synthesize.smk"
include: "rules/manifest.smk"
include: "rules/embed.smk"
include: "rules/train.smk"
include: "rules/fairface.smk"
include: "rules/stablebias.smk"
include: "rules/sample.smk"
include: "rules/audit.smk"
include: "rules/scoredecomp.smk"
include: "rules/experiment.smk"


rule all:
    default_target: True
    input:
        all_targets(),
