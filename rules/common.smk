# Shared helpers (included first): config validation (before any job runs), paths, wildcard constraints, the
# DAG-time checks of the inputs every model-reading rule takes, code versions, what `rule all` builds, report wrappers.
# Stage helpers: rules/helpers_data.smk (stages 1-3), rules/helpers_model.smk (4-5), rules/helpers_audits.smk (audits).
# (rules/preflight.smk, included before `configfile:`, puts this workflow's src/ on the path.)
from pathlib import Path

from biasdiff.codeversion import script_code_version
from biasdiff.config import check_overlay, read_yaml, validate_config
from biasdiff.embed.vocabulary import check_vocabulary
from biasdiff.errors import DataError
from biasdiff.artifacts.integrity import stale_array_message
from biasdiff.artifacts.shards import shard_ranges
from biasdiff.model.directory import verify_model_dir

# Overlays (--configfile) are checked as files too: Snakemake's merge hides what they tried to remove.
# read_yaml: a key given twice in one mapping (e.g. two arms of one name) is an error, not a silent overwrite.
for _file in workflow.configfiles:
    read_yaml(_file)
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


def trained_model():
    """The model this config trains (train.model: the {model} of results/models/), which the sample stage samples
    and the sample audits read."""
    return config["train"]["model"]


def script_code(name):
    """Content hash of the library code scripts/<name>.py runs (its import closure; comments and docstrings do not
    count): a rule's `code` param, so a change to that code reruns the rule and nothing else.
    """
    return script_code_version(Path(workflow.basedir) / "scripts" / f"{name}.py")


def results(path):
    """A path under the results directory."""
    return f"{RESULTS}/{path}"


def all_targets():
    """What `rule all` builds; each stage adds its final artifacts here."""
    targets = [
        results("manifest/images.parquet"),
        results("manifest/images.npy"),
    ]
    targets += [results(f"manifest/contact_{prompt}.png") for prompt in PROMPTS]
    targets += list(embedding_outputs().values())
    targets += [
        results(f"models/{trained_model()}/{name}")
        for name in ("train_config.json", "loss.png", "samples.png")
    ]
    targets += list(stablebias_outputs().values())
    targets += list(fairface_outputs().values())
    targets += [sample_outputs(trained_model(), word)["grid"] for word in SAMPLE_WORDS]
    targets += list(audit_outputs().values())
    targets += [
        *readout_outputs("detectability").values(),
        *readout_outputs("sdedit").values(),
    ]
    targets += scoredecomp_targets()
    targets += experiment_targets()
    return targets


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
