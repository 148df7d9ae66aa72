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


SIX = {"male_nurse", "female_nurse", "male_phil", "female_phil", "man", "woman"}


@pytest.mark.parametrize("overlays", [(), ("configs/smoke.yaml",), ("configs/control_nurse_female.yaml",), ("configs/control_philosopher_male.yaml",)])
def test_shipped_configs_validate_as_the_workflow_merges_them(overlays):
    cfg = load_config(ROOT / "config.yaml", *(ROOT / o for o in overlays))
    assert set(cfg["prompts"]) == SIX


def test_paper_preset_fails_only_on_the_data_it_needs_from_this_machine(tmp_path, monkeypatch):
    """Merged over config.yaml as the README runs it, the paper preset trains by epochs (no steps/epochs clash); on
    a machine without FairFace it stops at once, naming fairface.root, instead of after synthesis."""
    with pytest.raises(ConfigError, match="fairface.root: 'data/fairface' does not exist"):
        load_config(ROOT / "config.yaml", ROOT / "configs/paper.yaml")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "fairface").mkdir(parents=True)
    (tmp_path / "data" / "stable-bias-professions-v2").mkdir()
    cfg = load_config(ROOT / "config.yaml", ROOT / "configs/paper.yaml")
    assert cfg["train"]["steps"] is None and cfg["train"]["epochs"] == 81 and set(cfg["prompts"]) == SIX


PRESETS = ("configs/smoke.yaml", "configs/paper.yaml", "configs/control_nurse_female.yaml",
           "configs/control_nurse_male.yaml", "configs/control_philosopher_female.yaml",
           "configs/control_philosopher_male.yaml")


@pytest.fixture
def paper_data(tmp_path, monkeypatch):
    """A working directory holding the (empty) data directories configs/paper.yaml names, so that it loads."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "fairface").mkdir(parents=True)
    (tmp_path / "data" / "stable-bias-professions-v2").mkdir()


def test_smoke_preset_merges_to_its_known_settings(default_raw):
    """configs/smoke.yaml is an overlay: merged over config.yaml it gives the tiny run (values as the preset has
    always set them) and inherits the rest, prompt texts included, from config.yaml."""
    cfg = load_config(ROOT / "config.yaml", ROOT / "configs/smoke.yaml")
    assert cfg["image_size"] == 16 and cfg["synthesis"]["store_size"] == 32
    assert list(cfg["prompts"]) == list(default_raw["prompts"])  # same six, in config.yaml's order
    for name, spec in cfg["prompts"].items():
        assert (spec["count"], spec["shard_size"]) == (24, 12)
        assert spec["text"] == default_raw["prompts"][name]["text"]
        assert spec["words"] == default_raw["prompts"][name]["words"]
    train = cfg["train"]
    assert train["steps"] == 4 and train["batch_size"] == 16 and train["unet"]["block_out_channels"] == [8, 16]
    assert train["unet"]["layers_per_block"] == [0, 1] and train["unet"]["upsample_conv"] is False
    assert train["device"] == "cpu" and train["threads"] == 1 and train["wandb"]["mode"] == "disabled"
    assert train["optimizer"]["lr"] == 0.004 and train["unet"]["cond_scale"] == 11.3137  # config.yaml's
    assert (cfg["sample"]["n"], cfg["sample"]["steps"], cfg["sample"]["sampler"]) == (8, 4, "ddim")
    assert cfg["audit"]["gender_accuracy_floor"] == 0.0 and cfg["audit"]["classifier"]["members"] == 2
    assert cfg["fairface"]["fixture_max_per_split"] == 8 and cfg["fairface"]["timesteps"] == [100, 500]
    assert cfg["stablebias"]["text_encoder"]["model"] is None and cfg["stablebias"]["published"] == ["sd15_baseline"]
    assert cfg["scoredecomp"]["variants"] == ["simplex", "cosine"] and cfg["scoredecomp"]["elbo"]["budgets"] == [2]
    assert cfg["embedding"]["source"]["kind"] == "glove-wheel" and cfg["embedding"]["reference_words"] == 200


def test_paper_preset_merges_to_its_known_settings(default_raw, paper_data):
    cfg = load_config(ROOT / "config.yaml", ROOT / "configs/paper.yaml")
    assert cfg["image_size"] == 64 and list(cfg["prompts"]) == list(default_raw["prompts"])
    for name, spec in cfg["prompts"].items():
        assert (spec["count"], spec["shard_size"]) == (6000, 500)
        assert spec["text"] == default_raw["prompts"][name]["text"]
    synth = cfg["synthesis"]
    assert synth["backend"] == "diffusers" and synth["diffusers"]["model"] == "stabilityai/stable-diffusion-2-1"
    assert (synth["diffusers"]["scheduler"], synth["diffusers"]["steps"], synth["diffusers"]["guidance_scale"]) == (
        "DPMSolverSDEScheduler", 20, 7.5)
    source = cfg["embedding"]["source"]
    assert (source["kind"], source["name"]) == ("gensim-data", "word2vec-google-news-300")
    train = cfg["train"]
    assert train["steps"] is None and train["epochs"] == 81 and train["batch_size"] == 50
    assert train["unet"]["block_out_channels"] == [64, 128, 256, 256] and train["unet"]["cond_scale"] == 1.0
    assert train["unet"]["layers_per_block"] == 2 and train["unet"]["upsample_conv"] is True  # the seed's UNet
    assert (train["optimizer"]["lr"], train["optimizer"]["eps"]) == (0.0001, 0.00001)  # eps: config.yaml's
    assert train["ema"]["warmup"] is False and train["ema"]["start_step"] == 2000 and train["ema"]["decay"] == 0.995
    assert (cfg["sample"]["sampler"], cfg["sample"]["n"], cfg["sample"]["guidance_scale"]) == ("ddpm", 1000, 3.0)
    assert cfg["fairface"]["score_model"]["kind"] == "diffusers" and len(cfg["fairface"]["prompts"]["race"]) == 7
    assert cfg["stablebias"]["text_encoder"]["pooling"] == "flatten"
    assert cfg["stablebias"]["dataset"]["max_per_profession"] == 50
    assert cfg["scoredecomp"]["elbo"]["budgets"] == [1, 5, 25, 100, 500] and cfg["scoredecomp"]["n_images"] is None


def _resolve(node: dict, root: dict) -> tuple[dict, dict]:
    """Follow `$ref`s (another schema file, or #/... inside the current one) to the schema they name."""
    from biasdiff.config import SCHEMA_DIR

    while "$ref" in node:
        ref = node["$ref"]
        if ref.startswith("#/"):
            node = root
            for part in ref[2:].split("/"):
                node = node[part]
        else:
            root = node = yaml.safe_load((SCHEMA_DIR / ref).read_text())
    return node, root


def _keys_outside_schema(overlay: dict, node: dict, root: dict, path: tuple = ()) -> list[str]:
    node, root = _resolve(node, root)
    unknown = []
    for key, value in overlay.items():
        if key in node.get("properties", {}):
            sub = node["properties"][key]
        elif isinstance(node.get("additionalProperties"), dict):
            sub = node["additionalProperties"]
        else:
            unknown.append(".".join(path + (key,)))
            continue
        if isinstance(value, dict):
            unknown += _keys_outside_schema(value, sub, root, path + (key,))
    return unknown


def _same_as_base(overlay: dict, base, path: tuple = ()) -> list[str]:
    """Key paths whose value in the overlay is exactly config.yaml's (type included: 0 is not 0.0)."""
    same = []
    for key, value in overlay.items():
        if not isinstance(base, dict) or key not in base:
            continue
        if isinstance(value, dict) and isinstance(base[key], dict):
            same += _same_as_base(value, base[key], path + (key,))
        elif value == base[key] and type(value) is type(base[key]):
            same.append(".".join(path + (key,)))
    return same


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_are_overlays_of_config_yaml(default_raw, preset):
    """Each preset holds only what differs from config.yaml: keys the schema knows, prompts config.yaml defines,
    values config.yaml does not already have, and no prompt texts (those are written once, in config.yaml)."""
    from biasdiff.config import load_schema

    text = (ROOT / preset).read_text()
    overlay = yaml.safe_load(text)
    schema = load_schema()
    assert _keys_outside_schema(overlay, schema, schema) == []
    assert set(overlay.get("prompts", {})) <= set(default_raw["prompts"])
    assert all("text" not in spec for spec in overlay.get("prompts", {}).values())
    assert "text:" not in text
    assert _same_as_base(overlay, default_raw) == []


def test_steps_and_epochs_both_set_fail_before_any_job(default_raw):
    msg = _bad(default_raw, lambda c: c["train"].update(steps=800, epochs=81))
    assert "train.steps / train.epochs" in msg and "steps: null" in msg


@pytest.mark.parametrize("unet, key", [({"patch_size": 3}, "train.unet.patch_size"),
                                       ({"norm_num_groups": 5}, "train.unet.norm_num_groups"),
                                       ({"attention_resolutions": [4]}, "train.unet.attention_resolutions"),
                                       ({"layers_per_block": [0, 0, 1]}, "train.unet.layers_per_block"),
                                       ({"layers_per_block": [1, 1]}, "train.unet.layers_per_block"),
                                       ({"block_out_channels": [8] * 7, "attention_resolutions": []}, "image_size")])
def test_a_unet_that_cannot_be_built_fails_before_any_job(default_raw, unet, key):
    """The architecture is checked with the config (at DAG time), not first inside the training job."""
    msg = _bad(default_raw, lambda c: c["train"]["unet"].update(unet))
    assert msg.startswith(f"config key {key}")


@pytest.mark.parametrize("path", [None, "", "no/such/vectors.bin"])
def test_vectors_file_path_missing_or_empty_fails_before_any_job(default_raw, path):
    msg = _bad(default_raw, lambda c: c["embedding"].update(source={"kind": "file", "path": path}))
    assert "embedding.source.path" in msg


def test_prompts_only_keeps_a_subset_in_config_order(default_raw):
    cfg = copy.deepcopy(default_raw)
    cfg["prompts_only"] = ["woman", "male_nurse"]
    # the default design swaps nurse and philosopher, a word these two prompts no longer train: named, one line
    assert "experiment arm 'swapped'" in _bad(cfg, lambda c: None) and "philosopher" in _bad(cfg, lambda c: None)
    cfg["experiment"]["enabled"] = False
    assert list(validate_config(cfg)["prompts"]) == ["male_nurse", "woman"]
    msg = _bad(default_raw, lambda c: c.update(prompts_only=["woman", "nurse"]))
    assert "prompts_only" in msg and "['nurse']" in msg and "male_phil" in msg
    msg = _bad(default_raw, lambda c: c.update(prompts_only=[]))
    assert "prompts_only" in msg


def test_an_overlay_cannot_silently_fail_to_remove_prompts(tmp_path):
    overlay = tmp_path / "two.yaml"
    overlay.write_text("prompts: {}\n")
    with pytest.raises(ConfigError, match="prompts_only"):
        load_config(ROOT / "config.yaml", overlay)
    overlay.write_text("prompts_only: [man, woman]\nexperiment: {enabled: false}\n")
    assert list(load_config(ROOT / "config.yaml", overlay)["prompts"]) == ["man", "woman"]


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\ntrain:\n  steps: [1\n  lr: 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+:\d+: YAML syntax error") as err:
        load_config(ROOT / "config.yaml", bad)
    assert "\n" not in str(err.value)


def test_config_cli_reports_one_line(tmp_path, capsys):
    from biasdiff.config import main

    bad = tmp_path / "o.yaml"
    bad.write_text("train: {steps: 5, epochs: 2}\n")
    assert main([str(ROOT / "config.yaml"), str(bad)]) == 1
    assert "train.steps / train.epochs" in capsys.readouterr().err
    assert main([str(ROOT / "config.yaml")]) == 0


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
