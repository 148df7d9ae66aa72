"""Arms x replicates: what each trained model of the experiment is, resolved from the `experiment:` config section.

An *arm* is a small overlay of the settings that make a model differ: `embedding.source`, `embedding.seed` (the JL
seed), `embedding.transform` and `train.seed`; nothing else may differ between arms (the data, the model shape, the
sampler and the instrument are shared, so a difference between arms is the embedding's or the seed's).

Seeds of replicate k of an arm (`experiment.seeds`):
- `paired` (default): every arm's replicate k trains with the same seed: the arm's train.seed for k = 0, else
  derive_seed(train.seed, "replicate", k). Arms then share initialisation and data order per replicate (common random
  numbers), and replicate 0 of an arm whose overlay is empty *is* the workflow's single model (results/models/), so
  the default design trains one extra model per extra arm, not one more for the reference.
- `per-arm`: derive_seed(train.seed, "arm", arm, "replicate", k) for every k: arms are independent samples of models.
With `vary_jl_seed`, the JL seed follows the same scheme, so replicates measure training noise *and* the choice of
random projection; without it, replicates share the arm's projection and measure training noise only.

Anything the arm leaves as the base config (same embedding and train sections after the overlay and seeds) is the
base model and is not trained twice.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

from biasdiff.config import merge_config
from biasdiff.errors import ConfigError
from biasdiff.seeds import derive_seed

ARM_KEYS = {"embedding": ("source", "seed", "transform"), "train": ("seed",)}
SEED_MODULUS = 2**31 - 1


@dataclass(frozen=True)
class Replicate:
    """One trained model of the design."""

    arm: str
    rep: int
    train_seed: int
    jl_seed: int
    embedding: dict
    train: dict
    shared_embedding: bool  # the base config's embedding (results/embeddings/)
    shared_model: bool  # the base config's model (results/models/{train.model}/)


@dataclass(frozen=True)
class Point:
    """A sampling point of every model: guidance scale and training step (the final step is the trained model)."""

    id: str
    guidance_scale: float
    step: int
    n: int
    main: bool  # the sample stage's guidance scale at the final step: the summary's headline point


def check_arm_keys(arm: str, overlay: Any) -> None:
    """One-line ConfigError for an arm overlay that is not a mapping or touches a key arms cannot change."""
    if not isinstance(overlay, Mapping):
        raise ConfigError(f"config key experiment.arms.{arm}: must be a mapping of overrides ({{}} = the base config), "
                          f"got {type(overlay).__name__}")
    allowed = [f"{section}.{key}" for section, keys in ARM_KEYS.items() for key in keys]
    for section, value in overlay.items():
        if section not in ARM_KEYS or not isinstance(value, Mapping):
            raise ConfigError(f"config key experiment.arms.{arm}.{section}: an arm may override only {allowed} "
                              "(the data, model shape, sampler and instrument are shared by every arm)")
        for key in value:
            if key not in ARM_KEYS[section]:
                raise ConfigError(f"config key experiment.arms.{arm}.{section}.{key}: an arm may override only "
                                  f"{allowed} (the data, model shape, sampler and instrument are shared by every arm)")


def arm_config(config: Mapping, arm: str) -> dict:
    """The base config's embedding and train sections with arm `arm`'s overlay merged in (before replicate seeds)."""
    overlay = config["experiment"]["arms"][arm] or {}
    check_arm_keys(arm, overlay)
    out = {"embedding": copy.deepcopy(config["embedding"]), "train": copy.deepcopy(config["train"])}
    return merge_config(out, overlay)


def replicate_seed(base: int, scheme: str, arm: str, rep: int, what: str) -> int:
    """The seed `what` (train or jl) of replicate `rep` of `arm` under `scheme` (module docstring)."""
    if scheme == "paired":
        return int(base) if rep == 0 else derive_seed(base, what, "replicate", rep) % SEED_MODULUS
    return derive_seed(base, what, "arm", arm, "replicate", rep) % SEED_MODULUS


def design(config: Mapping) -> list[Replicate]:
    """Every (arm, replicate) model of the experiment, arms in config order."""
    exp = config["experiment"]
    out = []
    for arm in exp["arms"]:
        sections = arm_config(config, arm)
        for rep in range(int(exp["replicates"])):
            emb, train = copy.deepcopy(sections["embedding"]), copy.deepcopy(sections["train"])
            train["seed"] = replicate_seed(sections["train"]["seed"], exp["seeds"], arm, rep, "train")
            if exp["vary_jl_seed"]:
                emb["seed"] = replicate_seed(sections["embedding"]["seed"], exp["seeds"], arm, rep, "jl")
            shared_emb = emb == config["embedding"]
            shared = shared_emb and train == config["train"]
            if not shared:  # its own run name (logs, wandb)
                train["model"] = f"{arm}-rep{rep}"
            out.append(Replicate(arm, rep, int(train["seed"]), int(emb["seed"]), emb, train, shared_emb, shared))
    return out


FINAL = -1  # the final step of a model trained by epochs (train.steps null): not known before training


def point_id(guidance_scale: float, step: int) -> str:
    """w3-s800: the {point} wildcard of a guidance scale and a training step (w3-final for FINAL)."""
    return f"w{guidance_scale:g}-" + ("final" if step == FINAL else f"s{int(step)}")


def points(config: Mapping) -> list[Point]:
    """The sampling points of every model: the main one (sample.guidance_scale, final step, sample.n images per
    word), then each extra guidance scale at the final step and each checkpoint step at the main guidance scale
    (experiment.curve_n images per word)."""
    exp, sample = config["experiment"], config["sample"]
    steps = config["train"]["steps"]
    final, w_main = (int(steps) if steps is not None else FINAL), float(sample["guidance_scale"])
    out = [Point(point_id(w_main, final), w_main, final, int(sample["n"]), True)]
    for w in exp["guidance_scales"]:
        if float(w) != w_main:
            out.append(Point(point_id(w, final), float(w), final, int(exp["curve_n"]), False))
    for step in exp["checkpoint_steps"]:
        out.append(Point(point_id(w_main, step), w_main, int(step), int(exp["curve_n"]), False))
    return out


def check_experiment(config: dict) -> None:
    """Cross-field checks of the experiment section (before any job runs); sets train.snapshot_steps from
    experiment.checkpoint_steps so every model of the design (the base model included) keeps those EMA weights.
    Each arm's resolved embedding/train sections are validated against the schema by the caller."""
    exp = config["experiment"]
    arms = exp["arms"]
    if not arms or not exp["enabled"]:
        _check_snapshot_steps(config["train"])
        return
    for arm, overlay in arms.items():
        check_arm_keys(arm, overlay or {})
    reference = exp["reference"]
    if reference is not None and reference not in arms:
        raise ConfigError(f"config key experiment.reference: {reference!r} is not an arm; valid: {list(arms)}")
    train = config["train"]
    steps = train.get("steps")
    if steps is None and exp["checkpoint_steps"]:
        raise ConfigError("config key experiment.checkpoint_steps: intermediate steps need train.steps (not "
                          "train.epochs); set train.steps or experiment.checkpoint_steps: []")
    for step in exp["checkpoint_steps"]:
        if step >= steps or step % train["checkpoint_every"]:
            valid = list(range(train["checkpoint_every"], steps, train["checkpoint_every"]))
            raise ConfigError(f"config key experiment.checkpoint_steps: {step} is not an intermediate checkpoint of "
                              f"train.steps {steps} with train.checkpoint_every {train['checkpoint_every']}; valid: "
                              f"{valid} (the final step is the trained model itself)")
    train["snapshot_steps"] = sorted({*train.get("snapshot_steps", []), *exp["checkpoint_steps"]})
    _check_snapshot_steps(train)


def _check_snapshot_steps(train: Mapping) -> None:
    steps = train.get("steps")
    for step in train.get("snapshot_steps") or ():
        if steps is None or step >= steps or step % train["checkpoint_every"]:
            raise ConfigError(f"config key train.snapshot_steps: {step} must be a multiple of train.checkpoint_every "
                              f"({train['checkpoint_every']}) below train.steps ({steps})")


def reference_arm(config: Mapping) -> str:
    """The arm every other arm is compared with: experiment.reference, else the first arm."""
    exp = config["experiment"]
    return exp["reference"] or next(iter(exp["arms"]))
