# Helpers of the experiment (rules/experiment.smk): the design (arms x replicates) resolved from `experiment:`, the
# sampling points of every model, and which artifacts each (arm, replicate) shares with the single-model workflow.
# Included after rules/helpers_audits.smk (classifier_outputs(), readout_outputs(), audit_params()).
import json
import re

from biasdiff.embed.transforms import transform_label
from biasdiff.embed.vocabulary import check_vocabulary as _check_vocabulary
from biasdiff.experiment.design import (
    design as _design,
    points as _points,
    reference_arm,
)

EXPERIMENT = config["experiment"]
ARMS = list(EXPERIMENT["arms"]) if EXPERIMENT["enabled"] else []
DESIGN = {(r.arm, r.rep): r for r in _design(config)} if ARMS else {}
POINTS = _points(config) if ARMS else []
# An arm reading another vectors file: its words must be there, before any job.
for _rep in DESIGN.values():
    if _rep.embedding["source"] != config["embedding"]["source"]:
        _check_vocabulary(
            _rep.embedding["source"],
            {name: spec["words"] for name, spec in config["prompts"].items()},
            cache_dir=".snakemake/biasdiff",
        )


def experiment_base(arm, rep):
    return results(f"experiment/{arm}/rep-{rep}")


def replicate_of(wildcards):
    """The design entry of the job's {arm} and {rep}; a replicate beyond experiment.replicates is an error."""
    key = (wildcards.arm, int(wildcards.rep))
    if key not in DESIGN:
        raise ValueError(
            f"experiment arm {wildcards.arm!r} replicate {wildcards.rep} is not in the design "
            f"(arms {ARMS}, replicates 0..{EXPERIMENT['replicates'] - 1})"
        )
    return DESIGN[key]


def point_of(point_id):
    return next(p for p in POINTS if p.id == point_id)


def embedding_dir(rep):
    """Where the embedding of a design entry lives: the workflow's own when it is the base config's."""
    if rep.shared_embedding:
        return results("embeddings")
    return results(f"experiment/{rep.arm}/embedding-jl{rep.jl_seed}")


def experiment_embedding_outputs():
    """The embed stage's artifacts for one arm and JL seed."""
    base = results("experiment/{arm}/embedding-jl{jl}")
    return {
        name: f"{base}/{Path(path).name}" for name, path in embedding_outputs().items()
    }


def experiment_embedding_inputs(wildcards):
    """The arm's local vectors file when its source is a file (editing it reruns the arm's embedding)."""
    source = experiment_embedding_params(wildcards)["source"]
    if source["kind"] == "file" and source["path"]:
        return {"vectors": source["path"]}
    return {}


def experiment_embedding_params(wildcards):
    """The arm's embedding section with the wildcard's JL seed (must be one the design uses)."""
    for rep in DESIGN.values():
        if rep.arm == wildcards.arm and rep.jl_seed == int(wildcards.jl):
            return rep.embedding
    raise ValueError(
        f"experiment arm {wildcards.arm!r} has no replicate with JL seed {wildcards.jl}"
    )


def replicate_conditioning(wildcards):
    return f"{embedding_dir(replicate_of(wildcards))}/conditioning.parquet"


def replicate_model(arm, rep):
    """The train_config.json of a design entry's model: the workflow's own model when it is the base config's."""
    entry = DESIGN[(arm, int(rep))]
    if entry.shared_model:
        return trained_model_input(trained_model())
    return f"{experiment_base(arm, rep)}/model/train_config.json"


_REPLICATES_CHECKED = set()


def check_replicate_model(arm, rep, path):
    """An experiment model's weights, checked once per run while the DAG is built (from `experiment_models`): the
    final EMA weights and every snapshot it records (training-length points sample those) must be present and
    byte-identical to the hashes train_config.json records, so a truncated or replaced file stops the run with one
    line (naming the arm, the replicate and the --forcerun that retrains only this model) before any job. Not
    checked when the model is retrained anyway (--forcerun experiment_train or this file, --forceall).
    """
    settings = workflow.dag_settings
    if path in _REPLICATES_CHECKED or settings is None or not Path(path).is_file():
        return
    _REPLICATES_CHECKED.add(path)
    forced = {Path(target) for target in settings.forcerun}
    if settings.forceall or {Path("experiment_train"), Path(path)} & forced:
        return
    model_dir = Path(path).parent
    try:
        verify_model_dir(model_dir, ema=True)
        for step in recorded_snapshots(path):
            verify_model_dir(model_dir, snapshot=step)
    except DataError as exc:
        # what is wrong, without the library's advice (which names train_ddpm)
        problem = str(exc).split("; ")[0]
        raise DataError(
            f"experiment arm {arm} replicate {rep}: {problem}; "
            f"retrain this model only: snakemake --forcerun {path}"
        ) from None


def recorded_snapshots(path):
    """The snapshot steps whose weights train_config.json records (after verify_model_dir has read it). A step the
    config asks for but the record lacks is not damage: the changed checkpoint_steps retrain the model.
    """
    record = json.loads(Path(path).read_text())
    hashes = (record.get("result") or {}).get("weights_sha256") or {}
    steps = (re.match(r"snapshots/step-(\d+)/unet_ema/", key) for key in hashes)
    return sorted(int(m.group(1)) for m in steps if m)


def experiment_models(wildcards=None):
    """Input function of experiment_summary: every design model's train_config.json, each experiment model's
    weights checked (check_replicate_model). The check lives here because Snakemake drops a job whose input function
    fails and serves its existing outputs as current: only an input function of a job the run's target asks for
    directly (rule all, or the summary itself) stops the run; the sample jobs' check would be silently skipped.
    """
    paths = []
    for (arm, rep), entry in DESIGN.items():
        path = replicate_model(arm, rep)
        if not entry.shared_model:
            check_replicate_model(arm, rep, path)
        paths.append(path)
    return list(dict.fromkeys(paths))


def experiment_train_outputs():
    base = results("experiment/{arm}/rep-{rep}/model")
    return {
        name: (
            directory(f"{base}/{Path(path).name}")
            if name in ("unet", "unet_ema", "scheduler")
            else f"{base}/{Path(path).name}"
        )
        for name, path in train_outputs("default").items()
    }


def replicate_train_params(wildcards):
    return replicate_of(wildcards).train


def point_samples(arm, rep, point_id, word):
    """The .npy of one word at one point of one model: the sample stage's own samples for the base model's main
    point, else the experiment's."""
    entry, point = DESIGN[(arm, int(rep))], point_of(point_id)
    if entry.shared_model and point.main:
        return sample_outputs(trained_model(), word)["images"]
    return f"{experiment_base(arm, rep)}/samples/{point_id}/{word}.npy"


def experiment_sample_outputs():
    base = results("experiment/{arm}/rep-{rep}/samples/{point}")
    return {
        "images": [f"{base}/{word}.npy" for word in SAMPLE_WORDS],
        "meta": [f"{base}/{word}.parquet" for word in SAMPLE_WORDS],
        "grid": [f"{base}/grid_{word}.png" for word in SAMPLE_WORDS],
    }


def experiment_sample_model(wildcards):
    replicate_of(wildcards)
    return replicate_model(wildcards.arm, wildcards.rep)


def experiment_sample_params(wildcards):
    """The sample section with the point's guidance scale and sample count, and the snapshot step to load."""
    point = point_of(wildcards.point)
    final = point.step == POINTS[0].step  # the main point is at the final step
    return {
        "sample": {
            **config["sample"],
            "guidance_scale": point.guidance_scale,
            "n": point.n,
        },
        "snapshot": None if final else point.step,
    }


def experiment_audit_inputs(wildcards):
    replicate_of(wildcards)
    return {
        "samples": [
            point_samples(wildcards.arm, wildcards.rep, p.id, w)
            for p in POINTS
            for w in SAMPLE_WORDS
        ],
        "sdedit": readout_outputs("sdedit")["table"],
        **classifier_outputs(),
    }


def experiment_points():
    """The sampling points as plain records (rule params)."""
    return [
        {
            "id": p.id,
            "guidance_scale": p.guidance_scale,
            "step": p.step,
            "n": p.n,
            "main": p.main,
        }
        for p in POINTS
    ]


def experiment_audits():
    return [f"{experiment_base(arm, rep)}/audit.parquet" for (arm, rep) in DESIGN]


def experiment_biases():
    return [f"{embedding_dir(rep)}/bias.parquet" for rep in DESIGN.values()]


def experiment_design_records():
    """One record per model of the design (rule params and the fit JSON)."""
    return [
        {
            "arm": r.arm,
            "rep": r.rep,
            "train_seed": r.train_seed,
            "jl_seed": r.jl_seed,
            "transform": transform_label(r.embedding["transform"]),
            "source": r.embedding["source"]["kind"],
            "shared_model": r.shared_model,
        }
        for r in DESIGN.values()
    ]


def experiment_outputs():
    base = results("experiment")
    return {
        "table": f"{base}/summary.parquet",
        "csv": f"{base}/summary.csv",
        "markdown": f"{base}/summary.md",
        "fit": f"{base}/dose_response.json",
        "landing": f"{base}/landing.rst",
        "bars": f"{base}/arms.png",
        "dose_response": f"{base}/dose_response.png",
        "guidance": f"{base}/guidance.png",
        "training_length": f"{base}/training_length.png",
        **(
            {"contrast": f"{base}/contrast.parquet", "gap": f"{base}/gap.png"}
            if EXPERIMENT["contrast"]
            else {}
        ),
    }


def experiment_targets():
    return list(experiment_outputs().values()) if ARMS else []


def experiment_summary_params():
    calibration = config["audit"]["calibration"]
    return {
        "design": experiment_design_records(),
        "reference": reference_arm(config) if ARMS else None,
        "calibration_words": [calibration["female_word"], calibration["male_word"]],
        "confidence": EXPERIMENT["confidence"],
        "contrast_words": EXPERIMENT["contrast"],
    }
