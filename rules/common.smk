# Shared helpers: config validation (before any job runs), paths, target lists, wildcard constraints.
# (rules/preflight.smk, included before `configfile:`, puts this workflow's src/ on the path.)
from pathlib import Path

from biasdiff.codeversion import script_code_version
from biasdiff.config import check_overlay, read_yaml, validate_config
from biasdiff.embed.vocabulary import check_vocabulary
from biasdiff.errors import DataError
from biasdiff.manifest.integrity import stale_array_message
from biasdiff.synth.shards import shard_ranges
from biasdiff.train.modeldir import verify_model_dir

# Overlays (--configfile) are checked as files too: Snakemake's merge hides what they tried to remove.
for _overlay in workflow.overwrite_configfiles or ():
    check_overlay(_overlay, read_yaml(_overlay))
validate_config(config)
check_vocabulary(
    config["embedding"]["source"],
    {name: spec["words"] for name, spec in config["prompts"].items()},
    cache_dir=".snakemake/biasdiff",
)

RESULTS = config["results"]
PROMPTS = list(config["prompts"])


wildcard_constraints:
    prompt="|".join(PROMPTS),
    shard=r"\d{5}",


_ARRAY_CHECKED = []


def manifest_array(wildcards=None):
    """The packed array (input of every rule that reads pixels), checked once per run against the content hash its
    manifest records, while the DAG is built: an overwritten or truncated array stops the run before any job, with
    one line, instead of failing in (and losing the outputs of) every job that reads it. Not checked when the
    manifest is being rebuilt anyway (--forcerun build_manifest, --forceall)."""
    path = results("manifest/images.npy")
    settings = workflow.dag_settings
    if not _ARRAY_CHECKED and settings is not None:
        _ARRAY_CHECKED.append(path)
        if not settings.forceall and "build_manifest" not in settings.forcerun:
            message = stale_array_message(results("manifest/images.parquet"), path)
            if message:
                raise DataError(message)
    return path


_MODELS_CHECKED = set()


def trained_model_input(model):
    """results/models/{model}/train_config.json as the input of a rule that loads the model, with the model
    directory checked once per run while the DAG is built (weights present and byte-identical to the hashes
    train_config.json records): a truncated or replaced weights file stops the run with one line instead of looking
    current. Not checked when training reruns anyway (--forcerun train_ddpm, --forceall).
    """
    path = results(f"models/{model}/train_config.json")
    settings = workflow.dag_settings
    if model not in _MODELS_CHECKED and settings is not None and Path(path).is_file():
        _MODELS_CHECKED.add(model)
        if not settings.forceall and "train_ddpm" not in settings.forcerun:
            verify_model_dir(Path(path).parent, ema=True)
            verify_model_dir(Path(path).parent, ema=False)
    return path


def sample_model_input(wildcards=None):
    """The model the sample stage loads (the {model} wildcard of sample_word, else train.model), checked as
    trained_model_input does."""
    return trained_model_input(getattr(wildcards, "model", None) or sampled_model())


def scoredecomp_model_input(wildcards=None):
    """The model the score audits load, checked as trained_model_input does."""
    return trained_model_input(scoredecomp_model())


def script_code(name):
    """Content hash of the library code scripts/<name>.py runs (its import closure; comments and docstrings do not
    count): a rule's `code` param, so a change to that code reruns the rule and nothing else.
    """
    return script_code_version(Path(workflow.basedir) / "scripts" / f"{name}.py")


def results(path):
    """A path under the results directory."""
    return f"{RESULTS}/{path}"


def shards_of(prompt):
    """Shard ids of one prompt: 00000, 00001, ... (count / shard_size, rounded up)."""
    spec = config["prompts"][prompt]
    return [
        f"{i:05d}" for i in range(len(shard_ranges(spec["count"], spec["shard_size"])))
    ]


def shard_files(wildcards=None):
    """Every shard of every prompt (input of the manifest)."""
    return [
        results(f"synth/{prompt}/shard-{shard}.parquet")
        for prompt in PROMPTS
        for shard in shards_of(prompt)
    ]


def shard_params(wildcards):
    """Exactly what one shard's images depend on: its prompt, its index range, the backend and the seed.

    The prompt's count is deliberately absent: raising it adds shards without rerunning existing ones.
    """
    spec = config["prompts"][wildcards.prompt]
    ranges = shard_ranges(spec["count"], spec["shard_size"])
    shard = int(wildcards.shard)
    if shard >= len(ranges):
        raise ValueError(
            f"shard {wildcards.shard} of prompt {wildcards.prompt} does not exist; "
            f"valid: 00000..{len(ranges) - 1:05d}"
        )
    start, stop = ranges[shard]
    synth = config["synthesis"]
    return {
        "prompt": wildcards.prompt,
        "text": spec["text"],
        "attributes": spec["attributes"],
        "start": start,
        "stop": stop,
        "seed": config["seed"],
        "backend": synth["backend"],
        "store_size": synth["store_size"],
        "settings": synth[synth["backend"]],
    }


def synth_gpus():
    """GPUs one synthesis job asks for: 1 for the diffusers backend, 0 for the procedural one."""
    return 1 if config["synthesis"]["backend"] == "diffusers" else 0


def manifest_params():
    """The config slice the manifest depends on (never the synthesis settings: those reach it through the shards)."""
    return {
        "seed": config["seed"],
        "image_size": config["image_size"],
        "prompts": {
            name: {"words": spec["words"], "attributes": spec["attributes"]}
            for name, spec in config["prompts"].items()
        },
        "manifest": config["manifest"],
    }


def conditioning_words():
    """The union of every prompt's words, sorted: the words the embed stage makes vectors for."""
    return sorted(
        {word for spec in config["prompts"].values() for word in spec["words"]}
    )


def embedding_params():
    """The config slice the embed stage depends on: the embedding section and the conditioning words."""
    return {"embedding": config["embedding"], "words": conditioning_words()}


def embedding_inputs():
    """The local vectors file when the embedding source is a file (so editing it reruns embed), else nothing."""
    source = config["embedding"]["source"]
    if source["kind"] == "file" and source["path"]:
        return {"vectors": source["path"]}
    return {}


def embedding_outputs():
    """Every artifact of the embed stage, by name."""
    return {
        "conditioning": results("embeddings/conditioning.parquet"),
        "vectors": results("embeddings/vectors.parquet"),
        "bias": results("embeddings/bias.parquet"),
        "weat": results("embeddings/weat.parquet"),
        "distortion": results("embeddings/distortion.json"),
        "figure": results("embeddings/bias.png"),
    }


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


# Stage 4 (train) helpers.
def trained_model():
    """The model name this config trains (train.model, the {model} wildcard)."""
    return config["train"]["model"]


def train_outputs(model):
    """Every artifact of one trained model, by name."""
    base = f"models/{model}"
    return {
        "unet": directory(results(f"{base}/unet")),
        "unet_ema": directory(results(f"{base}/unet_ema")),
        "scheduler": directory(results(f"{base}/scheduler")),
        "config": results(f"{base}/train_config.json"),
        "log_csv": results(f"{base}/train_log.csv"),
        "loss_plot": results(f"{base}/loss.png"),
        "samples": results(f"{base}/samples.png"),
    }


def train_prompt_words():
    """prompt -> its conditioning words: the only part of `prompts:` training depends on."""
    return {name: list(spec["words"]) for name, spec in config["prompts"].items()}


def train_gpus():
    """GPUs the training job asks for: one per data-parallel process on CUDA, none on CPU."""
    device = config["train"]["device"]
    return config["train"]["num_processes"] if device.startswith("cuda") else 0


def all_targets():
    """What `rule all` builds; each stage adds its final artifacts here."""
    targets = [
        results("manifest/images.parquet"),
        results("manifest/images.npy"),
    ]
    targets += [results(f"manifest/contact_{prompt}.png") for prompt in PROMPTS]
    targets += list(embedding_outputs().values())
    targets += [
        results(f"models/{config['train']['model']}/{name}")
        for name in ("train_config.json", "loss.png", "samples.png")
    ]
    targets += list(stablebias_outputs().values())
    targets += list(fairface_outputs().values())
    targets += [sample_outputs(sampled_model(), word)["grid"] for word in SAMPLE_WORDS]
    targets += list(audit_outputs().values())
    targets += scoredecomp_targets()
    return targets


# ---- sample + audit (stages 5-6a) ----
from biasdiff.sample.words import sample_words

SAMPLE_WORDS = sample_words(config["prompts"])


def sampled_model():
    """The trained model the sample and audit stages use (train.model; results/models/{model}/)."""
    return config["train"]["model"]


def sample_outputs(model, word):
    """The three artifacts of one word's samples, by name."""
    return {
        "images": results(f"samples/{model}/{word}.npy"),
        "meta": results(f"samples/{model}/{word}.parquet"),
        "grid": results(f"samples/{model}/grid_{word}.png"),
    }


def sample_gpus():
    """GPUs one sampling job asks for: 1 when sample.device names CUDA, else 0."""
    return 1 if config["sample"]["device"].startswith("cuda") else 0


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
    }


def audit_inputs(wildcards=None):
    """The samples of every word of the sampled model, the manifest, the classifier and the embedding bias."""
    return {
        "samples": [
            sample_outputs(sampled_model(), word)["images"] for word in SAMPLE_WORDS
        ],
        "manifest": results("manifest/images.parquet"),
        "embedding_bias": results("embeddings/bias.parquet"),
        **classifier_outputs(),
    }


def audit_params():
    """The audit's config slice (the classifier's settings reach it through the classifier files)."""
    return {
        "gender_accuracy_floor": config["audit"]["gender_accuracy_floor"],
        "batch_size": config["audit"]["batch_size"],
        "calibration": config["audit"]["calibration"],
    }


# ---- scoredecomp (stage 6b) ----
# Keys of the scoredecomp section every score audit depends on; each rule adds its own part.
_SCOREDECOMP_SHARED = (
    "split",
    "seed",
    "device",
    "dtype",
    "batch_size",
    "use_ema",
    "space",
    "gender_words",
)
_SCOREDECOMP_PARTS = {
    "accuracy": ("n_images", "base", "timesteps", "n_draws", "variants", "elbo"),
    "samples": ("n_samples", "base", "timesteps", "n_draws"),
    "score_bias": ("score_bias",),
    "similarity": ("similarity",),
    "lipschitz": ("lipschitz",),
}


def scoredecomp_model():
    """The trained model the score audits use (scoredecomp.model, else train.model)."""
    return config["scoredecomp"]["model"] or config["train"]["model"]


def scoredecomp_params(part):
    """Exactly the slice of `scoredecomp:` one score audit depends on (plus the model it audits)."""
    section = config["scoredecomp"]
    keys = _SCOREDECOMP_SHARED + _SCOREDECOMP_PARTS[part]
    return {"model": scoredecomp_model(), **{key: section[key] for key in keys}}


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
    model = sampled_model()
    return {
        "model": sample_model_input,
        "conditioning": results("embeddings/conditioning.parquet"),
        "samples": [sample_outputs(model, word)["images"] for word in SAMPLE_WORDS],
        "classifier_audit": audit_outputs()["table"],
    }


def scoredecomp_outputs(part):
    """Artifacts of one score audit, by name."""
    a = "audit"
    return {
        "accuracy": {
            "accuracy": results(f"{a}/scoredecomp_accuracy.parquet"),
            "predictions": results(f"{a}/scoredecomp_predictions.parquet"),
            "figure": results(f"{a}/scoredecomp_accuracy.png"),
        },
        "samples": {"table": results(f"{a}/scoredecomp_samples.parquet")},
        "score_bias": {
            "table": results(f"{a}/score_bias.parquet"),
            "figure": results(f"{a}/score_bias.png"),
        },
        "similarity": {
            "conditions": results(f"{a}/score_similarity_conditions.parquet"),
            "timesteps": results(f"{a}/score_similarity_timesteps.parquet"),
            "heatmaps": results(f"{a}/score_similarity_heatmaps.png"),
            "curves": results(f"{a}/score_similarity_curves.png"),
            "timestep_heatmaps": results(f"{a}/score_similarity_across_t.png"),
        },
        "lipschitz": {
            "ratios": results(f"{a}/lipschitz_ratios.parquet"),
            "summary": results(f"{a}/lipschitz_summary.parquet"),
            "figure": results(f"{a}/lipschitz.png"),
        },
    }[part]


def scoredecomp_targets():
    """Every score-audit artifact (for rule all)."""
    parts = ("accuracy", "samples", "score_bias", "similarity", "lipschitz")
    return [path for part in parts for path in scoredecomp_outputs(part).values()]


def scoredecomp_gpus():
    """GPUs a score audit asks for: one when its device is CUDA, none otherwise."""
    return 1 if config["scoredecomp"]["device"].startswith("cuda") else 0


# ---- report (stage 7) ----
# `snakemake --report results/report.html` gathers every output marked with report(), i.e. figures (.png) and the
# tables (.csv) that have a caption of their own, grouped by stage (category), each with a caption from report/
# (Jinja: {{ snakemake.wildcards.word }} etc.). Rules wrap their outputs with reported() / report_entry().
REPORT_DIR = Path(workflow.basedir) / "report"


def report_caption(stage, name):
    """report/<stage>_<name>.rst if it exists, else the stage's caption report/<stage>.rst."""
    specific = REPORT_DIR / f"{stage}_{name}.rst"
    return str(specific if specific.exists() else REPORT_DIR / f"{stage}.rst")


def report_entry(stage, name, path):
    """One output entry (a path or a list of paths), wrapped in report() if it is a figure or a captioned table."""
    if isinstance(path, list):
        return [report_entry(stage, name, p) for p in path]
    text = str(path)
    captioned = (REPORT_DIR / f"{stage}_{name}.rst").exists()
    if text.endswith(".png") or (text.endswith(".csv") and captioned):
        return report(path, caption=report_caption(stage, name), category=stage)
    return path


def reported(stage, outputs):
    """A rule's named outputs (dict) with its figures and captioned tables wrapped in report(), category `stage`."""
    return {name: report_entry(stage, name, path) for name, path in outputs.items()}
