"""FairFace loaders on tiny fixtures written in both published layouts, plus the procedural fixture builder."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from biasdiff.errors import DataError
from biasdiff.fairface.fixture import run_fairface_fixture
from biasdiff.fairface.labels import CLASSIFIER_ORDER, HF_ORDER, RACES, names_from_indices
from biasdiff.fairface.load import load_fairface
from biasdiff.fairface.sample import stratified_sample
from biasdiff.manifest.build import write_manifest
from paper_standins import fairface_hf_schema


def _png(colour, size=8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def _write_official(root, split="val", base=None, rows=None):
    rows = rows or [
        ("1.jpg", "20-29", "Male", "East Asian", True, (255, 0, 0)),
        ("2.jpg", "more than 70", "Female", "Latino_Hispanic", False, (0, 255, 0)),
        ("3.jpg", "3-9", "Female", "Middle Eastern", True, (0, 0, 255)),
    ]
    base = base or root
    (base / split).mkdir(parents=True, exist_ok=True)
    records = []
    for name, age, gender, race, service, colour in rows:
        Image.new("RGB", (8, 8), colour).save(base / split / name)
        records.append({"file": f"{split}/{name}", "age": age, "gender": gender, "race": race, "service_test": service})
    pd.DataFrame(records).to_csv(root / f"fairface_label_{split}.csv", index=False)


def _write_hf(root, padding="0.25", split="validation", n_files=2):
    (root / padding).mkdir(parents=True, exist_ok=True)
    # Race index i in HF order; gender 0=Male; age 8="more than 70".
    records = [
        {"image": {"bytes": _png((i * 30, 0, 0)), "path": None}, "age": i % 9, "gender": i % 2, "race": i % 7,
         "service_test": bool(i % 2)}
        for i in range(7)
    ]
    schema = fairface_hf_schema()
    chunks = np.array_split(np.arange(7), n_files)
    for k, chunk in enumerate(chunks):
        table = pa.Table.from_pylist([records[i] for i in chunk], schema=schema)
        pq.write_table(table, root / padding / f"{split}-{k:05d}-of-{n_files:05d}.parquet", row_group_size=2)
    return records


def test_official_layout_columns_and_images(tmp_path):
    _write_official(tmp_path)
    ds = load_fairface(tmp_path, layout="auto", split="val")
    assert ds.layout == "official"
    assert list(ds.labels.columns[:5]) == ["file", "age", "gender", "race", "service_test"]
    assert ds.labels["race"].tolist() == ["East Asian", "Latino_Hispanic", "Middle Eastern"]
    assert ds.labels["age"].tolist()[1] == "more than 70"
    assert ds.labels["service_test"].tolist() == [True, False, True]
    imgs = ds.load_images([2, 0])
    assert imgs[0].getpixel((4, 4))[2] > 200 and imgs[1].getpixel((4, 4))[0] > 200


@pytest.mark.parametrize("padding,folder", [("0.25", "margin025"), ("1.25", "margin125"), ("1.25", "fairface-img-margin125-trainval")])
def test_official_padding_variants(tmp_path, padding, folder):
    _write_official(tmp_path, base=tmp_path / folder)
    ds = load_fairface(tmp_path, layout="official", split="val", padding=padding)
    assert all(folder in s for s in ds.labels["source"])
    # The other padding's folder is absent: a clear error naming where it looked.
    other = "0.25" if padding == "1.25" else "1.25"
    with pytest.raises(DataError, match="no image folder val/"):
        load_fairface(tmp_path, layout="official", split="val", padding=other)


def test_hf_parquet_index_mapping_and_images(tmp_path):
    records = _write_hf(tmp_path, padding="1.25")
    ds = load_fairface(tmp_path, layout="auto", split="val", padding="1.25")
    assert ds.layout == "hf_parquet" and len(ds) == 7
    # HF race order: 0 East Asian, 1 Indian, 2 Black, 3 White, 4 Middle Eastern, 5 Latino_Hispanic, 6 Southeast Asian.
    assert ds.labels["race"].tolist() == [
        "East Asian", "Indian", "Black", "White", "Middle Eastern", "Latino_Hispanic", "Southeast Asian"
    ]
    assert ds.labels["gender"].tolist()[:2] == ["Male", "Female"]
    assert ds.labels["age"].tolist()[-1] == "50-59"
    imgs = ds.load_images([6, 3])
    assert imgs[0].getpixel((0, 0))[0] == 180 and imgs[1].getpixel((0, 0))[0] == 90
    assert len(records) == 7


def test_classifier_and_hf_orders_differ_and_cover_same_names():
    assert set(HF_ORDER["race"]) == set(CLASSIFIER_ORDER["race"]) == set(RACES)
    assert names_from_indices([0, 3], "race", "hf_parquet") == ["East Asian", "White"]
    assert names_from_indices([0, 3], "race", "classifier") == ["White", "East Asian"]
    with pytest.raises(DataError, match="valid: 0..6"):
        names_from_indices([7], "race", "hf_parquet")


def test_missing_csv_names_expected_file(tmp_path):
    with pytest.raises(DataError, match="fairface_label_val.csv"):
        load_fairface(tmp_path, layout="auto", split="val")
    with pytest.raises(DataError, match="fairface_label_train.csv"):
        load_fairface(tmp_path, layout="official", split="train")


def test_missing_images_named(tmp_path):
    _write_official(tmp_path)
    (tmp_path / "val" / "2.jpg").unlink()
    (tmp_path / "val" / "3.jpg").unlink()
    with pytest.raises(DataError, match=r"2 of 3 listed image\(s\) missing.*val/2.jpg.*val/3.jpg"):
        load_fairface(tmp_path, split="val")


def test_unknown_label_value_rejected(tmp_path):
    _write_official(tmp_path, rows=[("1.jpg", "20-29", "Male", "Martian", True, (0, 0, 0))])
    with pytest.raises(DataError, match="Martian"):
        load_fairface(tmp_path, split="val")


def test_stratified_sample_is_seeded_and_proportional():
    labels = pd.DataFrame({"gender": ["Male"] * 60 + ["Female"] * 40, "race": (["White", "Black"] * 50)})
    a = stratified_sample(labels, 20, seed=3)
    assert np.array_equal(a, stratified_sample(labels, 20, seed=3))
    assert not np.array_equal(a, stratified_sample(labels, 20, seed=4))
    picked = labels.iloc[a]
    assert (picked["gender"] == "Male").sum() == 12 and len(set(a)) == 20
    assert np.array_equal(stratified_sample(labels, 500, seed=0), np.arange(100))


def test_build_fixture_official_layout_roundtrip(tmp_path):
    manifest = pd.DataFrame(
        {
            "array_index": np.arange(6),
            "prompt": ["man", "woman", "man", "woman", "male_nurse", "female_nurse"],
            "index": np.arange(6),
            "gender": ["male", "female", "male", "female", "male", "female"],
            "occupation": ["none", "none", "none", "none", "nurse", "nurse"],
            "split": ["train", "train", "val", "val", "val", "train"],
        }
    )
    arr = np.zeros((6, 16, 16, 3), np.uint8)
    arr[:, :, :, 0] = np.arange(6)[:, None, None] * 40
    write_manifest(manifest, arr, tmp_path / "images.parquet", tmp_path / "images.npy")
    counts = run_fairface_fixture(tmp_path / "images.parquet", tmp_path / "images.npy", {"root": tmp_path / "ff"}, {})
    assert counts == {"train": 3, "val": 3}
    ds = load_fairface(tmp_path / "ff", layout="official", split="val")
    assert ds.labels["file"].tolist() == ["val/1.jpg", "val/2.jpg", "val/3.jpg"]
    assert ds.labels["gender"].tolist() == ["Male", "Female", "Male"]
    assert ds.labels["race"].isna().all() and ds.labels["age"].isna().all()
    red = [img.getpixel((8, 8))[0] for img in ds.load_images([0, 1, 2])]
    assert [abs(r - e) <= 3 for r, e in zip(red, (80, 120, 160))] == [True] * 3
    header = (tmp_path / "ff" / "fairface_label_val.csv").read_text().splitlines()[0]
    assert header == "file,age,gender,race,service_test"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ff.")]
