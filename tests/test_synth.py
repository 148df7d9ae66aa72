"""Synthesis: deterministic procedural people that show what their prompt describes; shard files; the diffusers backend."""

import numpy as np
import pandas as pd
import pytest

from biasdiff.seeds import derive_seed, rng_for
from biasdiff.synth.procedural import RenderSettings, encode_png, render_person
from biasdiff.artifacts.shards import SHARD_COLUMNS, shard_ranges
from biasdiff.synth.stage import image_seed, run_synthesis

SETTINGS = RenderSettings(size=32)


def _params(prompt="female_nurse", start=0, stop=6, **overrides):
    params = {
        "prompt": prompt,
        "text": "a female nurse",
        "attributes": {"gender": "female", "occupation": "nurse"},
        "start": start,
        "stop": stop,
        "seed": 7,
        "backend": "procedural",
        "store_size": 32,
        "settings": {"supersample": 2, "noise_std": 4.0, "blur_max": 0.8},
    }
    params.update(overrides)
    return params


def test_same_seed_same_bytes_other_index_other_image():
    a = encode_png(render_person(rng_for(image_seed(0, "man", 3)), "male", "none", SETTINGS))
    b = encode_png(render_person(rng_for(image_seed(0, "man", 3)), "male", "none", SETTINGS))
    c = encode_png(render_person(rng_for(image_seed(0, "man", 4)), "male", "none", SETTINGS))
    assert a == b
    assert a != c


def test_image_seeds_unique_across_prompts_and_indices():
    seeds = {image_seed(0, p, i) for p in ("man", "woman", "male_nurse") for i in range(2000)}
    assert len(seeds) == 6000
    assert image_seed(0, "man", 1) != image_seed(1, "man", 1)


def test_render_shape_and_dtype():
    image = render_person(rng_for(1), "female", "philosopher", RenderSettings(size=64))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8


def _mean_images(gender, occupation, n=24):
    return np.stack(
        [render_person(rng_for("t", gender, occupation, i), gender, occupation, SETTINGS) for i in range(n)]
    ).astype(np.float32)


def test_gender_shows_through_hair_beside_the_head():
    """Long hair puts dark pixels beside the lower face and neck; short hair does not."""
    female = _mean_images("female", "none")
    male = _mean_images("male", "none")
    band = (slice(12, 18), slice(6, 26))  # rows around the chin, columns around the head (32 px images)
    assert female[:, band[0], band[1]].mean() < male[:, band[0], band[1]].mean() - 10


def test_occupation_shows_through_clothes_and_background():
    nurse = _mean_images("male", "nurse")
    phil = _mean_images("male", "philosopher")
    plain = _mean_images("male", "none")
    torso = (slice(26, 32), slice(8, 24))
    blue_minus_red = lambda imgs: (imgs[:, torso[0], torso[1], 2] - imgs[:, torso[0], torso[1], 0]).mean()  # noqa: E731
    assert blue_minus_red(nurse) > 40  # blue scrubs
    assert abs(blue_minus_red(plain)) < 20  # gray shirt
    assert blue_minus_red(phil) < -10  # brown tweed
    corner = (slice(0, 6), slice(0, 6))
    assert phil[:, corner[0], corner[1]].mean() < plain[:, corner[0], corner[1]].mean() - 40  # dark library shelves


def test_unknown_attribute_is_rejected():
    with pytest.raises(ValueError, match="valid"):
        render_person(rng_for(0), "female", "pilot", SETTINGS)


def test_shard_ranges_cover_count_and_only_append():
    assert shard_ranges(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert shard_ranges(12, 4)[:2] == shard_ranges(8, 4)


def test_synthesize_shard_writes_provenance(tmp_path):
    out = tmp_path / "shard-00001.parquet"
    df = run_synthesis({"shard": str(out)}, _params(start=6, stop=10))
    back = pd.read_parquet(out)
    assert list(back.columns) == SHARD_COLUMNS
    assert back["index"].tolist() == [6, 7, 8, 9]
    assert back["seed"].tolist() == [image_seed(7, "female_nurse", i) for i in range(6, 10)]
    assert set(back["gender"]) == {"female"} and set(back["occupation"]) == {"nurse"}
    assert (back["width"] == 32).all() and (back["backend"] == "procedural").all()
    assert back["png"].tolist() == df["png"].tolist()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_synthesize_shard_is_byte_identical(tmp_path):
    run_synthesis({"shard": str(tmp_path / "a.parquet")}, _params())
    run_synthesis({"shard": str(tmp_path / "b.parquet")}, _params())
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_failed_shard_leaves_nothing(tmp_path, monkeypatch):
    import biasdiff.synth.stage as stage

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(stage, "encode_png", boom)
    with pytest.raises(RuntimeError):
        run_synthesis({"shard": str(tmp_path / "shard.parquet")}, _params())
    assert list(tmp_path.iterdir()) == []


def test_derive_seed_stable_value():
    # pinned: changing the derivation would silently change every dataset
    assert derive_seed(0, "man", 0) == derive_seed("0", "man", "0")
    assert derive_seed(0, "man", 0) == 8598553462732293159


@pytest.mark.parametrize("size,supersample", [(8, 1), (16, 1), (16, 2)])
def test_tiny_render_sizes(size, supersample):
    for occupation in ("none", "nurse", "philosopher"):
        image = render_person(rng_for(size, occupation), "female", occupation, RenderSettings(size=size, supersample=supersample))
        assert image.shape == (size, size, 3)
