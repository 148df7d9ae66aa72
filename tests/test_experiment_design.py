"""The experiment design resolved from config: arm overlays, replicate seeds, what is shared with the base model,
sampling points, and every bad input as a one-line ConfigError naming the arm and the key, before any job."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from biasdiff.config import load_config, read_yaml, validate_config
from biasdiff.errors import ConfigError
from biasdiff.experiment.design import design, points, reference_arm
from biasdiff.seeds import derive_seed

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _with(base, **experiment):
    cfg = copy.deepcopy(base)
    cfg["experiment"] = {**cfg.get("experiment", {}), **experiment}
    return validate_config(cfg)


def _bad(base, **experiment):
    with pytest.raises(ConfigError) as info:
        _with(base, **experiment)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_default_design_is_raw_and_swapped_with_raw_rep0_the_base_model(base):
    cfg = validate_config(copy.deepcopy(base))
    entries = {(r.arm, r.rep): r for r in design(cfg)}
    assert list(entries) == [("raw", 0), ("swapped", 0)]
    raw, swapped = entries[("raw", 0)], entries[("swapped", 0)]
    assert raw.shared_model and raw.shared_embedding
    assert not swapped.shared_model and not swapped.shared_embedding
    assert swapped.embedding["transform"]["kind"] == "swap"
    assert swapped.embedding["transform"]["words"] == ["nurse", "philosopher"]
    # the arm changes only the transform: same JL seed, same training seed (paired), same everything else
    assert {k: v for k, v in swapped.embedding.items() if k != "transform"} == \
        {k: v for k, v in cfg["embedding"].items() if k != "transform"}
    assert {k: v for k, v in swapped.train.items() if k != "model"} == {k: v for k, v in cfg["train"].items() if k != "model"}
    assert swapped.train["model"] == "swapped-rep0"
    assert reference_arm(cfg) == "raw"
    # every model keeps the EMA weights of the training-length curve
    assert cfg["train"]["snapshot_steps"] == cfg["experiment"]["checkpoint_steps"] == [600]


def test_paired_seeds_are_shared_by_arms_and_per_arm_seeds_are_not(base):
    cfg = _with(base, replicates=3)
    seeds = {(r.arm, r.rep): (r.train_seed, r.jl_seed) for r in design(cfg)}
    t0 = cfg["train"]["seed"]
    assert seeds[("raw", 0)][0] == t0
    assert seeds[("raw", 1)][0] == derive_seed(t0, "train", "replicate", 1) % (2**31 - 1)
    for k in range(3):
        assert seeds[("raw", k)] == seeds[("swapped", k)]
    assert len({seeds[("raw", k)][0] for k in range(3)}) == 3
    assert {s[1] for s in seeds.values()} == {cfg["embedding"]["seed"]}  # one projection unless vary_jl_seed
    per_arm = {(r.arm, r.rep): r for r in design(_with(base, replicates=2, seeds="per-arm", vary_jl_seed=True))}
    assert per_arm[("raw", 0)].train_seed != per_arm[("swapped", 0)].train_seed
    assert per_arm[("raw", 0)].jl_seed != per_arm[("raw", 1)].jl_seed
    assert not any(r.shared_model for r in per_arm.values())  # no replicate is the base config any more


def test_an_arm_may_set_the_training_seed_and_another_vectors_file(base, tmp_path):
    vectors = tmp_path / "v.txt"
    vectors.write_text("man 1 0\n")
    cfg = _with(base, arms={"raw": {}, "seed7": {"train": {"seed": 7}},
                            "other": {"embedding": {"source": {"kind": "file", "path": str(vectors)}}}})
    entries = {r.arm: r for r in design(cfg)}
    assert entries["seed7"].train_seed == 7 and entries["seed7"].shared_embedding and not entries["seed7"].shared_model
    assert entries["other"].embedding["source"]["path"] == str(vectors)


def test_points_are_the_main_one_then_guidance_then_checkpoints(base):
    cfg = validate_config(copy.deepcopy(base))
    got = [(p.id, p.guidance_scale, p.step, p.n, p.main) for p in points(cfg)]
    assert got == [("w3-s1200", 3.0, 1200, 200, True), ("w1-s1200", 1.0, 1200, 50, False),
                   ("w5-s1200", 5.0, 1200, 50, False), ("w3-s600", 3.0, 600, 50, False)]


@pytest.mark.parametrize("arms,needle", [
    ({"raw": {}, "big": {"image_size": 64}}, "experiment.arms.big.image_size"),
    ({"raw": {}, "p": {"prompts": {}}}, "experiment.arms.p.prompts"),
    ({"raw": {}, "s": {"sample": {"n": 10}}}, "experiment.arms.s.sample"),
    ({"raw": {}, "w": {"train": {"steps": 10}}}, "experiment.arms.w.train.steps"),
    ({"raw": {}, "syn": {"synthesis": {"backend": "diffusers"}}}, "experiment.arms.syn.synthesis"),
])
def test_an_arm_touching_what_arms_share_is_named(base, arms, needle):
    message = _bad(base, arms=arms)
    assert needle in message and "embedding.transform" in message


@pytest.mark.parametrize("overlay,needle", [
    ({"embedding": {"transform": {"kindd": "swap"}}}, "kindd"),
    ({"embedding": {"transform": {"kind": "soft"}}}, "soft"),
    ({"embedding": {"transform": {"kind": "swap", "words": ["nurse"]}}}, "exactly two"),
    ({"embedding": {"transform": {"kind": "random", "words": ["doctor"]}}}, "doctor"),
    ({"embedding": {"source": {"kind": "file", "path": "/nonexistent.txt"}}}, "/nonexistent.txt"),
    ({"embedding": {"transform": {"kind": "inlp", "train_words": 900}}}, "train_words"),
])
def test_a_bad_arm_value_names_the_arm(base, overlay, needle):
    message = _bad(base, arms={"raw": {}, "bad": overlay})
    assert "'bad'" in message and needle in message


@pytest.mark.parametrize("experiment,needle", [
    ({"replicates": 0}, "experiment.replicates"),
    ({"checkpoint_steps": [300]}, "checkpoint_steps"),
    ({"checkpoint_steps": [1200]}, "checkpoint_steps"),
    ({"reference": "debiased"}, "experiment.reference"),
    ({"guidance_scales": [-1]}, "experiment.guidance_scales"),
    ({"arms": {"raw": {}, "bad-name": {}}}, "bad-name"),
])
def test_bad_design_settings_are_one_line_errors(base, experiment, needle):
    assert needle in _bad(base, **experiment)


def test_duplicate_arm_names_are_an_error_not_a_silent_overwrite(tmp_path):
    overlay = tmp_path / "dup.yaml"
    overlay.write_text("experiment:\n  arms:\n    raw: {}\n    swapped: {}\n    swapped: {train: {seed: 3}}\n")
    with pytest.raises(ConfigError, match=r"dup.yaml:5:.*'swapped' appears twice"):
        read_yaml(overlay)


def test_switched_off_design_skips_every_arm_check(base):
    cfg = _with(base, enabled=False, arms={"raw": {}, "big": {"image_size": 64}})
    assert cfg["experiment"]["enabled"] is False


def test_shipped_experiment_preset_validates():
    cfg = load_config(ROOT / "config.yaml", ROOT / "configs" / "experiment.yaml")
    arms = cfg["experiment"]["arms"]
    kinds = {a: (o or {}).get("embedding", {}).get("transform", {}).get("kind", "none") for a, o in arms.items()}
    assert {"none", "swap", "hard-debias", "inlp", "random", "bias-scale"} <= set(kinds.values())
    assert cfg["experiment"]["replicates"] >= 3
    assert len(design(cfg)) == len(arms) * cfg["experiment"]["replicates"]
