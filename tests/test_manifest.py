"""Manifest: exact counts, a deterministic disjoint split, byte-identical outputs, a packed array equal to the PNGs."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from biasdiff.errors import DataError
from biasdiff.artifacts.manifest import MANIFEST_COLUMNS, load_images
from biasdiff.manifest.build import run_manifest
from biasdiff.manifest.build import split_of
from biasdiff.synth.stage import run_synthesis

PROMPTS = {
    "male_nurse": {"words": ["man", "nurse", "person"], "attributes": {"gender": "male", "occupation": "nurse"}, "count": 10},
    "woman": {"words": ["woman", "person", "woman"], "attributes": {"gender": "female", "occupation": "none"}, "count": 7},
}


def _shards(root, shard_size=4):
    paths = []
    for prompt, spec in PROMPTS.items():
        for k, start in enumerate(range(0, spec["count"], shard_size)):
            path = root / "synth" / prompt / f"shard-{k:05d}.parquet"
            params = {
                "prompt": prompt,
                "text": prompt,
                "attributes": spec["attributes"],
                "start": start,
                "stop": min(start + shard_size, spec["count"]),
                "seed": 0,
                "backend": "procedural",
                "store_size": 32,
                "settings": {},
            }
            run_synthesis({"shard": str(path)}, params)
            paths.append(str(path))
    return paths


def _params(val_fraction=0.3):
    return {
        "image_size": 16,
        "prompts": {k: {"words": v["words"], "attributes": v["attributes"]} for k, v in PROMPTS.items()},
        "manifest": {"val_fraction": val_fraction, "split_seed": 0, "contact_sheet_n": 9},
    }


def _build(root, shards, params=None, tag="m"):
    out = root / tag
    contacts = {p: str(out / f"contact_{p}.png") for p in PROMPTS}
    outputs = {"manifest": str(out / "images.parquet"), "array": str(out / "images.npy"),
               "counts": str(out / "counts.csv"), "contacts": contacts}
    manifest = run_manifest(shards, outputs, params or _params())
    return manifest, out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("manifest")
    shards = _shards(root)
    manifest, out = _build(root, shards)
    return root, shards, manifest, out


def test_counts_exact_per_prompt(built):
    _, _, manifest, out = built
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert manifest.groupby("prompt").size().to_dict() == {"male_nurse": 10, "woman": 7}
    counts = pd.read_csv(out / "counts.csv").set_index("prompt")
    assert counts.loc["male_nurse", "total"] == 10 and counts.loc["woman", "total"] == 7
    assert (counts["train"] + counts["val"] == counts["total"]).all()


def test_rows_ordered_and_words_attached(built):
    _, _, manifest, _ = built
    assert manifest["array_index"].tolist() == list(range(17))
    assert manifest.loc[manifest.prompt == "male_nurse", "index"].tolist() == list(range(10))
    assert list(manifest.loc[manifest.prompt == "woman", "words"].iloc[0]) == ["woman", "person", "woman"]
    assert list(pd.read_parquet(built[3] / "images.parquet")["words"].iloc[0]) == ["man", "nurse", "person"]


def test_split_deterministic_and_disjoint(built):
    _, _, manifest, _ = built
    assert set(manifest["split"]) <= {"train", "val"}
    keys = list(zip(manifest.prompt, manifest["index"]))
    assert len(set(keys)) == len(keys)
    assert manifest["split"].tolist() == [split_of(0, p, i, 0.3) for p, i in keys]
    # the split of an image never depends on how many other images exist
    big = [split_of(0, "man", i, 0.1) for i in range(5000)]
    assert big[:100] == [split_of(0, "man", i, 0.1) for i in range(100)]
    assert 0.08 < big.count("val") / 5000 < 0.12


def test_packed_array_matches_pngs(built):
    _, _, manifest, out = built
    df, array = load_images(out / "images.parquet", out / "images.npy")
    assert array.shape == (17, 16, 16, 3) and array.dtype == np.uint8
    row = df.iloc[12]
    png = pd.read_parquet(row.shard_file)["png"].iloc[row.shard_row]
    expected = np.asarray(Image.open(io.BytesIO(png)).convert("RGB").resize((16, 16), Image.LANCZOS))
    np.testing.assert_array_equal(array[row.array_index], expected)
    val, _ = load_images(out / "images.parquet", out / "images.npy", split="val")
    assert set(val["split"]) == {"val"}


def test_byte_identical_rebuild(built, tmp_path):
    root, shards, _, out = built
    _, again = _build(root, shards, tag="again")
    for name in ("images.parquet", "images.npy", "counts.csv", "contact_woman.png"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_corrupt_png_names_shard_and_row(built, tmp_path):
    _, shards, _, _ = built
    df = pd.read_parquet(shards[1])
    df.loc[2, "png"] = b"\x89PNG\r\n\x1a\n-not-really"
    bad = tmp_path / "shard-bad.parquet"
    df.to_parquet(bad, index=False)
    with pytest.raises(DataError, match=rf"shard {bad} row 2"):
        _build(tmp_path, [shards[0], str(bad), *shards[2:]], tag="bad")
    assert not (tmp_path / "bad" / "images.parquet").exists()


def test_missing_artifacts_name_the_rule(tmp_path):
    with pytest.raises(DataError, match="build_manifest"):
        load_images(tmp_path / "images.parquet", tmp_path / "images.npy")


def _copy_built(built, tmp_path):
    import shutil

    _, _, _, out = built
    for name in ("images.parquet", "images.npy"):
        shutil.copy(out / name, tmp_path / name)
    return tmp_path / "images.parquet", tmp_path / "images.npy"


@pytest.mark.parametrize("garbage", [8 * 1024, 50 * 1024])
def test_overwritten_pixels_are_refused_naming_the_file_and_the_rule(built, tmp_path, garbage):
    """8 KB of new bytes in the pixel data (same size, still a valid .npy) and 50 KB over the header too: both are
    one-line errors naming the array and `--forcerun build_manifest`, never pixels silently read."""
    manifest, array = _copy_built(built, tmp_path)
    raw = bytearray(array.read_bytes())
    start = 128 if garbage < 16 * 1024 else 0  # past the .npy header, or over it
    raw[start : start + garbage] = np.random.default_rng(1).integers(0, 256, garbage, dtype=np.uint8).tobytes()
    array.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"images\.npy.*forcerun build_manifest") as err:
        load_images(manifest, array)
    assert "\n" not in str(err.value) and "allow_pickle" not in str(err.value)


def test_manifest_records_content_hashes_of_array_and_shards(built):
    import hashlib

    from biasdiff.artifacts.integrity import recorded_integrity

    _, _, manifest, out = built
    record = recorded_integrity(out / "images.parquet")
    assert record["images_sha256"] == hashlib.sha256((out / "images.npy").read_bytes()).hexdigest()
    assert record["images_shape"] == [len(manifest), 16, 16, 3]
    shards = sorted(set(manifest["shard_file"]))
    assert sorted(record["shards_sha256"]) == shards
    assert all(record["shards_sha256"][s] == hashlib.sha256(open(s, "rb").read()).hexdigest() for s in shards)


def test_a_manifest_without_the_record_is_refused(built, tmp_path):
    manifest, array = _copy_built(built, tmp_path)
    pd.read_parquet(manifest).to_parquet(manifest, index=False)  # same rows, no content hash
    with pytest.raises(DataError, match="no content hash.*forcerun build_manifest"):
        load_images(manifest, array)
