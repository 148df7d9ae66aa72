"""Load and validate the workflow config against `schemas/config.schema.yaml` (JSON Schema, YAML-encoded).

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

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
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


def _looks_like_path(model: str) -> bool:
    """Hub ids are `owner/name`; anything absolute, relative (./, ../, ~) or with more than one slash is a path."""
    return model.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or Path(model).exists()


def validate_config(config: dict, schema_dir: Path = SCHEMA_DIR) -> dict:
    """Schema validation with defaults, then semantic checks. Returns the (mutated) config."""
    validate_schema(config, schema_dir)
    check_semantics(config)
    return config


def load_config(path: str | Path, schema_dir: Path = SCHEMA_DIR) -> dict:
    """Read a YAML config file and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    config = yaml.safe_load(path.read_text()) or {}
    return validate_config(config, schema_dir)
