# Helpers of the audits: the attribute-classifier audit of the samples (stage 6a), the StableBias and FairFace
# audits, and the score audits of the own DDPM (stage 6b), whose table SCORE_AUDITS every score-audit rule reads.
# Included after rules/helpers_model.smk (SAMPLE_WORDS, sample_outputs()).


# ---- attribute-classifier audit of the samples (stage 6a) ----
def classifier_outputs():
    """The attribute classifier's weights, label vocabulary and held-out metrics."""
    return {
        "weights": results("audit/classifier/model.safetensors"),
        "meta": results("audit/classifier/classifier.json"),
        "metrics": results("audit/classifier_metrics.json"),
    }


def audit_outputs():
    """Every artifact of the per-word sample audit, by name."""
    return {
        "table": results("audit/sample_bias.parquet"),
        "csv": results("audit/sample_bias.csv"),
        "markdown": results("audit/sample_bias.md"),
        "bars": results("audit/sample_bias.png"),
        "scatter": results("audit/output_vs_embedding_bias.png"),
        "labels": results("audit/sample_labels.parquet"),
    }


def audit_inputs(wildcards=None):
    """The samples of every word of the sampled model, the manifest, the classifier, the embedding bias and the
    instrument's SDEdit sensitivity/specificity per context (for the corrected P(female)).
    """
    return {
        "samples": [
            sample_outputs(trained_model(), word)["images"] for word in SAMPLE_WORDS
        ],
        "manifest": results("manifest/images.parquet"),
        "embedding_bias": results("embeddings/bias.parquet"),
        "sdedit": readout_outputs("sdedit")["table"],
        **classifier_outputs(),
    }


def readout_outputs(rule):
    """The instrument's readout per context: detectability ladders (rule readout_detectability) and SDEdit
    sensitivity/specificity (rule readout_sdedit), under results/audit/readout/."""
    return {
        "detectability": {
            "table": results("audit/readout/detectability.parquet"),
            "curves": results("audit/readout/detectability.png"),
        },
        "sdedit": {
            "table": results("audit/readout/sdedit.parquet"),
            "rates": results("audit/readout/sdedit.csv"),
            "examples": results("audit/readout/sdedit.png"),
        },
    }[rule]


def readout_inputs(wildcards=None):
    """Held-out labelled images, the classifier, the trained model and its conditioning vectors."""
    return {
        "manifest": results("manifest/images.parquet"),
        "images": manifest_array(),
        "model": trained_model_input(trained_model()),
        "conditioning": results("embeddings/conditioning.parquet"),
        **classifier_outputs(),
    }


READOUT_KEYS = {  # the audit.readout keys each readout rule uses (a change to another key does not rerun it)
    "detectability": (
        "split",
        "per_cell",
        "seed",
        "batch_size",
        "device",
        "precision",
        "blur_noise",
        "diffusion_t",
    ),
    "sdedit": (
        "split",
        "per_cell",
        "seed",
        "batch_size",
        "device",
        "precision",
        "sdedit",
        "context_words",
    ),
}


def readout_params(step):
    """The audit.readout keys readout `step` (detectability or sdedit) uses and the sample section's sampler (SDEdit
    runs it; the ladders use its weights choice). correction_strength is the audit's, not SDEdit's; the classifier's
    accuracy floor is the audits' (the readout measures the classifier whatever its accuracy).
    """
    readout = config["audit"]["readout"]
    sample = config["sample"]
    params = {key: readout[key] for key in READOUT_KEYS[step]}
    if step == "sdedit":
        params["sdedit"] = {"strengths": readout["sdedit"]["strengths"]}
    keys = (
        ("sampler", "steps", "eta", "guidance_scale", "use_ema")
        if step == "sdedit"
        else ("use_ema",)
    )
    return {**params, "sampling": {k: sample[k] for k in keys}}


def audit_params():
    """The audit's config slice (the classifier's settings reach it through the classifier files; the instrument's
    rates through the SDEdit table, read at correction_strength)."""
    readout = config["audit"]["readout"]
    return {
        "gender_accuracy_floor": config["audit"]["gender_accuracy_floor"],
        "batch_size": config["audit"]["batch_size"],
        "calibration": config["audit"]["calibration"],
        "correction_strength": readout["sdedit"]["correction_strength"],
        "correction_resamples": readout["correction_resamples"],
        "seed": readout["seed"],
    }


# ---- StableBias and FairFace audits ----
def stablebias_outputs():
    """Every artifact of the StableBias audit, by name."""
    return {
        "embedding": results("audit/stablebias_embedding.parquet"),
        "output": results("audit/stablebias_output.parquet"),
        "relation": results("audit/stablebias_relation.parquet"),
        "crosscheck": results("audit/stablebias_crosscheck.parquet"),
        "figure": results("audit/stablebias_scatter.png"),
    }


def stablebias_gpus():
    """GPUs the StableBias audit asks for (text encoder, CLIP labels): 1 when stablebias.device names CUDA, else 0."""
    return 1 if config["stablebias"]["device"].startswith("cuda") else 0


def stablebias_inputs():
    """Local files the audit reads (so editing them reruns it): a vectors file, a dataset file."""
    inputs = {}
    source = config["embedding"]["source"]
    if source["kind"] == "file" and source.get("path"):
        inputs["vectors"] = source["path"]
    dataset = config["stablebias"]["dataset"]["path"]
    if dataset and Path(dataset).is_file():
        inputs["dataset"] = dataset
    return inputs


def fairface_ddpm_model():
    """Name of the own DDPM the audit uses (fairface.score_model.model, else train.model)."""
    name = config["fairface"]["score_model"]["model"]
    return name or config.get("train", {}).get("model", "default")


def fairface_inputs(wildcards=None):
    """The fixture (when no FairFace root is configured) and, for the own DDPM, its model and conditioning."""
    inputs = {}
    if not config["fairface"]["root"]:
        inputs["root"] = results("fairface/fixture")
    if config["fairface"]["score_model"]["kind"] == "ddpm":
        inputs["model"] = trained_model_input(fairface_ddpm_model())
        inputs["conditioning"] = results("embeddings/conditioning.parquet")
    return inputs


def fairface_outputs():
    """Every artifact of the FairFace audit, by name."""
    return {
        "predictions": results("audit/fairface_predictions.parquet"),
        "accuracy": results("audit/fairface_accuracy.parquet"),
        "confusion": results("audit/fairface_confusion.parquet"),
        "figure": results("audit/fairface_accuracy.png"),
    }


# ---- score audits (stage 6b) ----
# One entry per score audit. Adding one: a library function (biasdiff.scoredecomp), its script scripts/<rule>.py, an
# entry here, and its rule in rules/scoredecomp.smk (which names its script and this entry). The rule's inputs, outputs,
# log, resources, priority and params are derived from the entry:
#   keys      the audit's own keys of the `scoredecomp:` section, after the shared ones (order matters: params are hashed)
#   data      "real": held-out real images of the manifest, with the audited model (scoredecomp.model);
#             "samples": every word's samples of train.model and the classifier audit beside (+ params.words)
#   outputs   output name -> file under results/audit/ (figures go to the report, category "scoredecomp")
#   runtime   resources.runtime in minutes; priority: the rule's priority (0 if absent)
# The entry's name names the log: logs/scoredecomp/<name>.log.
SCORE_AUDITS = {
    "accuracy": {
        "keys": ("n_images", "base", "timesteps", "n_draws", "variants", "elbo"),
        "data": "real",
        "outputs": {
            "accuracy": "scoredecomp_accuracy.parquet",
            "predictions": "scoredecomp_predictions.parquet",
            "figure": "scoredecomp_accuracy.png",
        },
        "runtime": 240,
    },
    "samples": {
        "keys": ("n_samples", "base", "timesteps", "n_draws", "samples_elbo"),
        "data": "samples",
        "outputs": {
            "table": "scoredecomp_samples.parquet",
            "labels": "scoredecomp_sample_labels.parquet",
            "agreement": "instrument_agreement.csv",
        },
        "runtime": 240,
        "priority": 1,
    },
    "score_bias": {
        "keys": ("score_bias",),
        "data": "real",
        "outputs": {"table": "score_bias.parquet", "figure": "score_bias.png"},
        "runtime": 120,
    },
    "similarity": {
        "keys": ("similarity",),
        "data": "real",
        "outputs": {
            "conditions": "score_similarity_conditions.parquet",
            "timesteps": "score_similarity_timesteps.parquet",
            "heatmaps": "score_similarity_heatmaps.png",
            "curves": "score_similarity_curves.png",
            "timestep_heatmaps": "score_similarity_across_t.png",
        },
        "runtime": 120,
    },
    "lipschitz": {
        "keys": ("lipschitz",),
        "data": "real",
        "outputs": {
            "ratios": "lipschitz_ratios.parquet",
            "summary": "lipschitz_summary.parquet",
            "figure": "lipschitz.png",
        },
        "runtime": 120,
    },
}
# Keys of the scoredecomp section every score audit depends on (before its own keys).
_SCOREDECOMP_SHARED = (
    "split",
    "seed",
    "device",
    "dtype",
    "precision",
    "batch_size",
    "use_ema",
    "space",
    "gender_words",
)


def scoredecomp_model():
    """The trained model the score audits use (scoredecomp.model, else train.model)."""
    return config["scoredecomp"]["model"] or trained_model()


def scoredecomp_model_input(wildcards=None):
    """The model the score audits load, checked as trained_model_input does."""
    return trained_model_input(scoredecomp_model())


def scoredecomp_config(audit):
    """Exactly the slice of `scoredecomp:` one score audit depends on (plus the model it audits)."""
    section = config["scoredecomp"]
    keys = _SCOREDECOMP_SHARED + SCORE_AUDITS[audit]["keys"]
    return {"model": scoredecomp_model(), **{key: section[key] for key in keys}}


def scoredecomp_params(audit):
    """A score audit's params but `code`: its config slice, and the words (in the order of its samples) when it
    reads samples."""
    params = {"scoredecomp": scoredecomp_config(audit)}
    if SCORE_AUDITS[audit]["data"] == "samples":
        params["words"] = SAMPLE_WORDS
    return params


def scoredecomp_inputs(audit):
    """A score audit's inputs, by its data: real images or every word's samples."""
    inputs = {"real": scoredecomp_real_inputs, "samples": scoredecomp_sample_inputs}
    return inputs[SCORE_AUDITS[audit]["data"]]()


def scoredecomp_real_inputs():
    """The audited model, its conditioning vectors and the manifest (real images)."""
    return {
        "model": scoredecomp_model_input,
        "conditioning": results("embeddings/conditioning.parquet"),
        "manifest": results("manifest/images.parquet"),
        "images": manifest_array,
    }


def scoredecomp_sample_inputs():
    """The sampled model, its conditioning, every word's samples and the attribute-classifier audit beside."""
    model = trained_model()
    return {
        "model": sample_model_input,
        "conditioning": results("embeddings/conditioning.parquet"),
        "samples": [sample_outputs(model, word)["images"] for word in SAMPLE_WORDS],
        "classifier_audit": audit_outputs()["table"],
        "classifier_labels": audit_outputs()["labels"],
    }


def scoredecomp_outputs(audit):
    """Artifacts of one score audit, by name."""
    files = SCORE_AUDITS[audit]["outputs"]
    return {name: results(f"audit/{file}") for name, file in files.items()}


def scoredecomp_log(audit):
    """A score audit's log file."""
    return results(f"logs/scoredecomp/{audit}.log")


def scoredecomp_resources(audit):
    """A score audit's resources: 4 GB, its runtime, one GPU when scoredecomp.device is CUDA."""
    return {
        "mem_mb": 4000,
        "runtime": SCORE_AUDITS[audit]["runtime"],
        "gpu": scoredecomp_gpus(),
    }


def scoredecomp_priority(audit):
    """A score audit's priority (rules/audit.smk says why the samples' one goes first)."""
    return SCORE_AUDITS[audit].get("priority", 0)


def scoredecomp_targets():
    """Every score-audit artifact (for rule all)."""
    return [
        path for audit in SCORE_AUDITS for path in scoredecomp_outputs(audit).values()
    ]


def scoredecomp_gpus():
    """GPUs a score audit asks for: one when its device is CUDA, none otherwise."""
    return 1 if config["scoredecomp"]["device"].startswith("cuda") else 0
