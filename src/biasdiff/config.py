"""Load and validate the workflow config against `schemas/config.schema.yaml` in this package (JSON Schema,
YAML-encoded).

The main schema refers to one schema file per section (`$ref: embedding.schema.yaml`); `validate_config` fills
defaults from the schema, then runs the cross-field checks JSON Schema cannot express. Every failure is a
one-line `ConfigError` naming the key and what would be valid.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from biasdiff.errors import ConfigError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"  # package data: found from an installed package too
MAIN_SCHEMA = "config.schema.yaml"


def _registry(schema_dir: Path) -> Registry:
    def retrieve(uri: str) -> Resource:
        path = schema_dir / uri
        if not path.is_file():
            raise ConfigError(f"schema file {path} referenced by the config schema does not exist")
        return Resource.from_contents(yaml.safe_load(path.read_text()), default_specification=DRAFT202012)

    return Registry(retrieve=retrieve)


def _with_defaults(validator_class):
    """A validator that writes each property's `default` into the instance before validating it."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line: the key, the value, and what would be valid."""
    key = _key_path(error)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "enum":
        return f"config key {key}: {error.instance!r} is not one of {list(error.validator_value)}"
    if error.validator == "additionalProperties":
        allowed = sorted((schema.get("properties") or {}).keys())
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        return f"config key {key}: unknown key(s) {extra}; valid keys are {allowed}"
    if error.validator == "required":
        return f"config key {key}: {error.message}"
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        return f"config key {key}: {error.instance!r} must be {error.validator} {error.validator_value}"
    if error.validator == "minItems":
        return f"config key {key}: needs at least {error.validator_value} item(s), got {error.instance!r}"
    if error.validator == "type":
        return f"config key {key}: {error.instance!r} is not of type {error.validator_value}"
    desc = schema.get("description")
    hint = f" ({desc})" if desc else ""
    return f"config key {key}: {error.message}{hint}"


def load_schema(schema_dir: Path = SCHEMA_DIR) -> dict:
    return yaml.safe_load((schema_dir / MAIN_SCHEMA).read_text())


def section_defaults(section: str, schema_dir: Path = SCHEMA_DIR) -> dict:
    """Every default of one config section (`schemas/<section>.schema.yaml`), as an empty section validates to."""
    schema = yaml.safe_load((schema_dir / f"{section}.schema.yaml").read_text())
    cfg: dict = {}
    _with_defaults(jsonschema.Draft202012Validator)(schema, registry=_registry(schema_dir)).validate(cfg)
    return cfg


def validate_schema(config: dict, schema_dir: Path = SCHEMA_DIR) -> dict:
    """Validate `config` in place against the schema, filling defaults. Raises ConfigError on the first error."""
    schema = load_schema(schema_dir)
    cls = _with_defaults(jsonschema.Draft202012Validator)
    validator = cls(schema, registry=_registry(schema_dir))
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_describe(best))
    return config


def check_semantics(config: Mapping[str, Any]) -> None:
    """Cross-field checks that JSON Schema cannot express (counts vs shard sizes, paths that must exist)."""
    for name, prompt in config["prompts"].items():
        if prompt["shard_size"] > prompt["count"]:
            raise ConfigError(
                f"config key prompts.{name}.shard_size: {prompt['shard_size']} exceeds count {prompt['count']}; "
                f"use a shard_size between 1 and {prompt['count']}"
            )
    synth = config["synthesis"]
    if synth["backend"] == "diffusers":
        model = str(synth["diffusers"]["model"])
        if _looks_like_path(model) and not Path(model).expanduser().is_dir():
            raise ConfigError(
                f"config key synthesis.diffusers.model: local model directory {model!r} does not exist; "
                "give an existing diffusers pipeline directory or a hub id such as stabilityai/stable-diffusion-2-1"
            )
    if synth["backend"] == "procedural":
        from biasdiff.synth.procedural import GENDERS, OCCUPATIONS

        for name, prompt in config["prompts"].items():
            attrs = prompt["attributes"]
            if attrs["gender"] not in GENDERS:
                raise ConfigError(
                    f"config key prompts.{name}.attributes.gender: {attrs['gender']!r} cannot be rendered by the "
                    f"procedural backend; valid: {sorted(GENDERS)}"
                )
            if attrs["occupation"] not in OCCUPATIONS:
                raise ConfigError(
                    f"config key prompts.{name}.attributes.occupation: {attrs['occupation']!r} cannot be rendered "
                    f"by the procedural backend; valid: {sorted(OCCUPATIONS)}"
                )


def _check_local_model(key: str, model, example: str) -> None:
    """A local model directory named at `key` must exist (hub ids are left to the job)."""
    if model and _looks_like_path(str(model)) and not Path(str(model)).expanduser().is_dir():
        raise ConfigError(f"config key {key}: local model directory {model!r} does not exist; give an existing "
                          f"directory or a hub id such as {example}")


def check_inputs(config: Mapping[str, Any]) -> None:
    """Cross-key checks that would otherwise fail inside a job, possibly hours in: step counts, local paths."""
    train = config.get("train", {})
    if (train.get("steps") is None) == (train.get("epochs") is None):
        raise ConfigError(f"config keys train.steps / train.epochs: set exactly one (got steps={train.get('steps')}, "
                          f"epochs={train.get('epochs')}); an overlay that sets epochs must set steps: null")
    source = config["embedding"]["source"]
    if source["kind"] == "file":
        path = source.get("path")
        if not path:
            raise ConfigError("config key embedding.source.path: empty, but source kind file needs a local vectors file "
                              "(word2vec .bin, word2vec/GloVe text or gensim .kv); or set embedding.source.kind to "
                              "glove-wheel")
        if not Path(str(path)).expanduser().is_file():
            raise ConfigError(f"config key embedding.source.path: {path!r} does not exist (relative paths are relative "
                              f"to the working directory); give an existing vectors file")
    fairface = config.get("fairface", {})
    root = fairface.get("root")
    if root and not Path(str(root)).expanduser().exists():
        raise ConfigError(f"config key fairface.root: {root!r} does not exist; give a FairFace root (official CSV + "
                          "image folders, or Hugging Face Parquet shards) or null for the procedural fixture")
    score_model = fairface.get("score_model", {})
    if score_model.get("kind") == "diffusers":
        if not score_model.get("id"):
            raise ConfigError("config key fairface.score_model.id: empty, but kind diffusers needs a pipeline hub id or "
                              "local directory (paper: stabilityai/stable-diffusion-2-1)")
        _check_local_model("fairface.score_model.id", score_model["id"], "stabilityai/stable-diffusion-2-1")
    dataset = config.get("stablebias", {}).get("dataset", {})
    if dataset.get("path"):
        if not Path(str(dataset["path"])).expanduser().exists():
            raise ConfigError(f"config key stablebias.dataset.path: {dataset['path']!r} does not exist; give the "
                              "StableBias images dataset (Parquet file or folder) or null for the published tables")
        _check_local_model("stablebias.dataset.clip", dataset.get("clip"), "openai/clip-vit-base-patch32")
    check_precisions(config)
    if "unet" in train:
        from biasdiff.model.architecture import check_train_unet

        check_train_unet(config["image_size"], train["unet"])
    check_readout(config)
    check_transform(config["embedding"]["transform"], _conditioning_words(config), "embedding.transform",
                    config["embedding"]["reference_words"])


def _conditioning_words(config: Mapping[str, Any]) -> list[str]:
    return sorted({w for prompt in config["prompts"].values() for w in prompt["words"]})


def check_transform(transform: Mapping[str, Any], words: list[str], key: str, reference_words: int) -> None:
    """A named transform (swap, random) names conditioning words (swap: exactly two); inlp's training words fit in
    the reference vocabulary."""
    kind, named = transform["kind"], list(transform.get("words") or [])
    if kind in ("swap", "random"):
        if kind == "swap" and len(named) != 2:
            raise ConfigError(f"config key {key}.words: swap exchanges exactly two words, got {named}; e.g. "
                              "[nurse, philosopher]")
        if not named:
            raise ConfigError(f"config key {key}.words: random needs at least one word; valid: {words}")
        unknown = [w for w in named if w not in words]
        if unknown:
            raise ConfigError(f"config key {key}.words: {unknown} are not conditioning words; valid: {words}")
    if kind == "inlp" and 2 * int(transform["train_words"]) > int(reference_words):
        raise ConfigError(f"config key {key}.train_words: {transform['train_words']} per gender needs "
                          f"embedding.reference_words >= {2 * int(transform['train_words'])} (is {reference_words})")


def check_experiment_arms(config: dict, schema_dir: Path) -> None:
    """Every arm of `experiment.arms`: only the keys an arm may change, a config that validates with the overlay
    merged in (a misspelt or out-of-range key names the arm), a valid transform and an existing vectors file."""
    from biasdiff.experiment.design import arm_config, check_experiment

    check_experiment(config)
    if not config["experiment"]["enabled"]:
        return
    for arm in config["experiment"]["arms"]:
        sections = arm_config(config, arm)
        trial = {**copy.deepcopy(config), **copy.deepcopy(sections)}
        try:
            validate_schema(trial, schema_dir)
        except ConfigError as exc:
            raise ConfigError(f"experiment arm {arm!r}: {exc}") from None
        emb = trial["embedding"]
        try:
            check_transform(emb["transform"], _conditioning_words(config), "embedding.transform",
                            emb["reference_words"])
            source = emb["source"]
            if source["kind"] == "file" and not (source.get("path") and Path(str(source["path"])).expanduser().is_file()):
                raise ConfigError(f"config key embedding.source.path: {source.get('path')!r} does not exist; give an "
                                  "existing vectors file")
        except ConfigError as exc:
            raise ConfigError(f"experiment arm {arm!r}: {exc}") from None
    contrast = config["experiment"]["contrast"]
    words = _conditioning_words(config)
    if contrast is not None and (len(set(contrast)) != 2 or not set(contrast) <= set(words)):
        raise ConfigError(f"config key experiment.contrast: {contrast} must be two different conditioning words "
                          f"or null (no gap table); valid: {words}")


def check_readout(config: Mapping[str, Any]) -> None:
    """audit.readout: the correction strength is one SDEdit runs, and every prompt's occupation context has a
    conditioning word the model is trained with."""
    readout = config.get("audit", {}).get("readout")
    if not readout:
        return
    strengths = [float(s) for s in readout["sdedit"]["strengths"]]
    if float(readout["sdedit"]["correction_strength"]) not in strengths:
        raise ConfigError(f"config key audit.readout.sdedit.correction_strength: "
                          f"{readout['sdedit']['correction_strength']} is not one of audit.readout.sdedit.strengths "
                          f"{strengths}")
    words = {w for prompt in config["prompts"].values() for w in prompt["words"]}
    contexts = {str(prompt["attributes"].get("occupation")) for prompt in config["prompts"].values()}
    for context in sorted(contexts):
        word = readout["context_words"].get(context)
        if word is None:
            raise ConfigError(f"config key audit.readout.context_words: no word for occupation {context!r} (has "
                              f"{sorted(readout['context_words'])}); give one of the trained words {sorted(words)}")
        if word not in words:
            raise ConfigError(f"config key audit.readout.context_words.{context}: {word!r} is not a word the model is "
                              f"trained with; valid: {sorted(words)}")


# The sections whose forward passes run under their `precision` key, on their `device`.
PRECISION_SECTIONS = ("train", "sample", "audit.classifier", "audit.readout", "scoredecomp", "fairface")


def check_precisions(config: Mapping[str, Any]) -> None:
    """`precision: bf16` on a CPU without bf16 units is an error before any job (it would run emulated, several times
    slower than fp32). A device `auto` counts as the CPU where no NVIDIA driver is loaded."""
    from biasdiff.hardware import bf16_unavailable, cpu_bf16_flags, cuda_present

    for section in PRECISION_SECTIONS:
        node: Any = config
        for part in section.split("."):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        if not isinstance(node, Mapping) or node.get("precision") != "bf16":
            continue
        device = str(node.get("device", "auto"))
        on_cpu = device == "cpu" or (device == "auto" and not cuda_present())
        if on_cpu and not cpu_bf16_flags():
            raise ConfigError(bf16_unavailable(f"{section}.precision"))


def _looks_like_path(model: str) -> bool:
    """Hub ids are `owner/name`; anything absolute, relative (./, ../, ~) or with more than one slash is a path."""
    return model.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or Path(model).exists()


def select_prompts(config: dict) -> dict:
    """Apply `prompts_only` (validated): keep only the listed prompts, in `prompts:` order."""
    keep = config.get("prompts_only")
    if keep is None:
        return config
    unknown = [name for name in keep if name not in config["prompts"]]
    if unknown:
        raise ConfigError(f"config key prompts_only: {unknown} are not prompts; valid: {list(config['prompts'])}")
    config["prompts"] = {name: spec for name, spec in config["prompts"].items() if name in keep}
    return config


def validate_config(config: dict, schema_dir: Path = SCHEMA_DIR) -> dict:
    """Schema validation with defaults, prompt selection, then semantic checks. Returns the (mutated) config."""
    validate_schema(config, schema_dir)
    select_prompts(config)
    check_semantics(config)
    check_inputs(config)
    check_experiment_arms(config, schema_dir)
    return config


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, except that a key repeated in one mapping is an error (PyYAML keeps the last silently:
    two arms of the same name would be one arm)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise ConfigError(f"{mark.name}:{mark.line + 1}:{mark.column + 1}: key {key!r} appears twice in one "
                                  "mapping (YAML keeps only the last); give each key once")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict:
    """A YAML config file as a dict; a syntax error names the file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except ConfigError as exc:  # the loader knows the line, not the file
        raise ConfigError(str(exc).replace("<unicode string>", str(path))) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: YAML syntax error ({problem}); fix the file (mind indentation, no tabs)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of keys, not {type(data).__name__}")
    return data


def check_overlay(path: str | Path, overlay: Mapping[str, Any]) -> None:
    """Mistakes only visible in an overlay file itself, before Snakemake merges it into config.yaml."""
    if "prompts" in overlay and not overlay["prompts"]:
        raise ConfigError(f"config file {path}: prompts is empty, but overlays merge into config.yaml's prompts key by "
                          f"key and cannot remove any; list the prompts to keep under prompts_only: [...]")


def merge_config(base: dict, overlay: Mapping[str, Any]) -> dict:
    """Deep-merge `overlay` into `base` as Snakemake merges --configfile files (mappings key by key, all else
    replaced). Returns `base`."""
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge_config(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_config(path: str | Path, *overlays: str | Path, schema_dir: Path = SCHEMA_DIR) -> dict:
    """Read a YAML config file, merge `overlays` over it as Snakemake does, and validate the result."""
    config = read_yaml(path)
    for overlay in overlays:
        data = read_yaml(overlay)
        check_overlay(overlay, data)
        merge_config(config, data)
    return validate_config(config, schema_dir)


def main(argv: list[str] | None = None) -> int:
    """`python -m biasdiff.config config.yaml [overlay.yaml ...]`: check a config and its overlays as the workflow
    would (YAML syntax with file and line, schema, cross-key checks, local paths), before Snakemake reads them."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m biasdiff.config config.yaml [overlay.yaml ...]", file=sys.stderr)
        return 2
    try:
        config = load_config(args[0], *args[1:])
    except ConfigError as exc:
        print(f"ConfigError: {exc}", file=sys.stderr)
        return 1
    print(f"config OK: {len(config['prompts'])} prompt(s): {', '.join(config['prompts'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
