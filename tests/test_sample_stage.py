"""The sample stage function on a real (tiny, untrained) WordConditionedUNet saved in the train stage's layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from biasdiff.errors import ConfigError, DataError
from biasdiff.sample.stage import image_seeds, run_sample
from biasdiff.sample.words import sample_words
from biasdiff.model.unet import build_scheduler, build_unet

COND_DIM = 4
PARAMS = dict(n=5, sampler="ddim", steps=3, eta=0.0, guidance_scale=3.0, use_ema=True, seed=0, batch_size=4,
              device="cpu", dtype="float32", grid_n=4)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models") / "tiny"
    unet = build_unet({"image_size": 8, "cond_dim": COND_DIM, "block_out_channels": [8, 16], "attention_resolutions": [4],
                       "attention_head_dim": 8, "norm_num_groups": 4})
    unet.save_pretrained(root / "unet")
    unet.save_pretrained(root / "unet_ema")
    build_scheduler().save_pretrained(root / "scheduler")
    (root / "train_config.json").write_text('{"image_size": 8}\n')  # the contract: every model directory has one
    return root


@pytest.fixture(scope="module")
def conditioning(tmp_path_factory):
    path = tmp_path_factory.mktemp("emb") / "conditioning.parquet"
    rng = np.random.default_rng(0)
    pd.DataFrame({"word": ["man", "nurse", "woman"],
                  "vector": [rng.normal(size=COND_DIM).astype(np.float32).tolist() for _ in range(3)]}).to_parquet(path)
    return path


def _outputs(tmp_path, word):
    return dict(images=tmp_path / f"{word}.npy", meta=tmp_path / f"{word}.parquet", grid=tmp_path / f"grid_{word}.png")


@pytest.mark.parametrize("word", ["nurse", "null"])
def test_sample_word_writes_images_metadata_and_grid(model_dir, conditioning, tmp_path, word):
    out = _outputs(tmp_path, word)
    run_sample(model_dir, conditioning, word, outputs=out, settings=PARAMS)
    images = np.load(out["images"])
    assert images.shape == (5, 8, 8, 3) and images.dtype == np.uint8
    meta = pd.read_parquet(out["meta"])
    assert list(meta["seed"]) == image_seeds(0, word, 5) and (meta["model"] == "tiny").all()
    assert (meta["steps"] == 3).all() and (meta["guidance_scale"] == 3.0).all()
    assert Image.open(out["grid"]).size[0] > 8
    again = _outputs(tmp_path / "again", word)
    run_sample(model_dir, conditioning, word, outputs=again, settings=PARAMS)
    np.testing.assert_array_equal(np.load(again["images"]), images)  # same config, same pixels


def test_unknown_word_fails_before_writing_and_lists_valid_words(model_dir, conditioning, tmp_path):
    out = _outputs(tmp_path, "doctor")
    with pytest.raises(DataError, match=r"'doctor'.*\['man', 'nurse', 'woman', 'null'\]"):
        run_sample(model_dir, conditioning, "doctor", outputs=out, settings=PARAMS)
    assert not any(p.exists() for p in out.values())


def test_missing_model_dir_names_train_ddpm(conditioning, tmp_path):
    with pytest.raises(DataError, match="train_ddpm"):
        run_sample(tmp_path / "models" / "absent", conditioning, "man", outputs=_outputs(tmp_path, "man"), settings=PARAMS)


def test_sample_words_is_the_union_plus_null():
    prompts = {"a": {"words": ["man", "nurse", "person"]}, "b": {"words": ["man", "person", "man"]}}
    assert sample_words(prompts) == ["man", "nurse", "person", "null"]
    with pytest.raises(ConfigError, match="prompts.b.words.*reserved"):
        sample_words({"b": {"words": ["null"]}})
