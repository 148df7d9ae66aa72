"""The config schema rejects each bad input with a one-line error naming the key, before any job runs."""

import copy
from pathlib import Path

import pytest
import yaml

from biasdiff.config import load_config, validate_config
from biasdiff.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def default_raw():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _bad(raw, mutate):
    cfg = copy.deepcopy(raw)
    mutate(cfg)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    message = str(info.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("path", ["config.yaml", "configs/smoke.yaml", "configs/paper.yaml"])
def test_shipped_configs_validate(path):
    cfg = load_config(ROOT / path)
    assert set(cfg["prompts"]) == {"male_nurse", "female_nurse", "male_phil", "female_phil", "man", "woman"}


def test_defaults_are_filled(default_raw):
    cfg = validate_config(copy.deepcopy(default_raw))
    assert cfg["synthesis"]["diffusers"]["steps"] == 20
    assert cfg["manifest"]["val_fraction"] == 0.1


def test_seed_prompts_and_words(default_raw):
    cfg = validate_config(copy.deepcopy(default_raw))
    words = {k: v["words"] for k, v in cfg["prompts"].items()}
    assert words == {
        "male_nurse": ["man", "nurse", "person"],
        "female_nurse": ["woman", "nurse", "person"],
        "male_phil": ["man", "philosopher", "person"],
        "female_phil": ["woman", "philosopher", "person"],
        "man": ["man", "person", "man"],
        "woman": ["woman", "person", "woman"],
    }
    assert cfg["prompts"]["female_nurse"]["text"].startswith("Create a realistic image of a female nurse")


def test_unknown_backend(default_raw):
    msg = _bad(default_raw, lambda c: c["synthesis"].update(backend="dalle"))
    assert "synthesis.backend" in msg and "procedural" in msg and "diffusers" in msg


def test_prompt_without_words(default_raw):
    msg = _bad(default_raw, lambda c: c["prompts"]["man"].update(words=[]))
    assert "prompts.man.words" in msg


def test_prompt_missing_words_key(default_raw):
    msg = _bad(default_raw, lambda c: c["prompts"]["man"].pop("words"))
    assert "prompts.man" in msg and "words" in msg


@pytest.mark.parametrize("count", [0, -3, 2.5, "ten"])
def test_count_not_positive_integer(default_raw, count):
    msg = _bad(default_raw, lambda c: c["prompts"]["woman"].update(count=count))
    assert "prompts.woman.count" in msg


def test_shard_size_above_count(default_raw):
    msg = _bad(default_raw, lambda c: c["prompts"]["woman"].update(count=10, shard_size=20))
    assert "prompts.woman.shard_size" in msg and "10" in msg


def test_missing_local_model_directory(default_raw, tmp_path):
    missing = str(tmp_path / "no-such-pipeline")

    def mutate(c):
        c["synthesis"]["backend"] = "diffusers"
        c["synthesis"]["diffusers"] = {"model": missing}

    msg = _bad(default_raw, mutate)
    assert "synthesis.diffusers.model" in msg and missing in msg


def test_hub_id_is_not_mistaken_for_a_path(default_raw):
    cfg = copy.deepcopy(default_raw)
    cfg["synthesis"] = {"backend": "diffusers", "diffusers": {"model": "stabilityai/stable-diffusion-2-1"}}
    validate_config(cfg)


def test_unknown_key_names_valid_keys(default_raw):
    msg = _bad(default_raw, lambda c: c["synthesis"].update(backnd="procedural"))
    assert "backnd" in msg and "backend" in msg


def test_unrenderable_attribute(default_raw):
    msg = _bad(default_raw, lambda c: c["prompts"]["man"]["attributes"].update(occupation="pilot"))
    assert "prompts.man.attributes.occupation" in msg and "nurse" in msg


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
