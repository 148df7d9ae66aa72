"""The embed stage end to end on a small vectors file written here: artifacts, determinism, transforms, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from biasdiff.artifacts.conditioning import load_conditioning
from biasdiff.embed.stage import run_embed
from biasdiff.vectors.wordlists import DEFINITIONAL_PAIRS, WEAT_TESTS
from biasdiff.errors import DataError

COND = ["man", "nurse", "person", "philosopher", "woman"]
OUTPUTS = ("conditioning", "vectors", "bias", "weat", "distortion", "figure")


@pytest.fixture(scope="module")
def glove_file(tmp_path_factory):
    """A 24-d GloVe-format file holding every word the stage needs, with a planted gender axis: female words
    +1, male words -1, "nurse" +0.5, "philosopher" -0.5 along it, plus 40 filler words for the reference set."""
    rng = np.random.default_rng(0)
    d = 24
    axis = np.zeros(d)
    axis[0] = 1.0
    female = {f.lower() for f, _ in DEFINITIONAL_PAIRS} | set(WEAT_TESTS["care_vs_thinking"][2])
    male = {m.lower() for _, m in DEFINITIONAL_PAIRS} | set(WEAT_TESTS["care_vs_thinking"][3])
    words = list(dict.fromkeys(COND + sorted(female) + sorted(male)))
    words += [w.lower() for test in WEAT_TESTS.values() for group in test for w in group if w.lower() not in words]
    words += [f"filler{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(40)]
    words = list(dict.fromkeys(words))
    lines = []
    for w in words:
        v = 0.3 * rng.normal(size=d)
        v[0] = 1.0 if w in female else -1.0 if w in male else {"nurse": 0.5, "philosopher": -0.5}.get(w, 0.0)
        lines.append(" ".join([w] + [f"{x:.6f}" for x in v]))
    path = tmp_path_factory.mktemp("vectors") / "small_glove.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _embedding(path, **overrides):
    cfg = {
        "source": {"kind": "file", "path": str(path), "format": "auto"},
        "dim": 16,
        "seed": 0,
        "reference_words": 30,
        "weat_permutations": 200,
        "transform": {"kind": "none", "scale": 1.0, "gendered_words": []},
    }
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def _paths(root):
    names = {"distortion": "distortion.json", "figure": "bias.png"}
    return {k: root / names.get(k, f"{k}.parquet") for k in OUTPUTS}


def _run(root, embedding, words=COND):
    paths = _paths(root)
    run_embed(outputs=paths, settings=embedding, words=words)
    return paths


def test_stage_writes_every_artifact_with_the_contracted_columns(tmp_path, glove_file):
    paths = _run(tmp_path, _embedding(glove_file))
    cond = pd.read_parquet(paths["conditioning"])
    assert cond["word"].tolist() == COND
    assert {"word", "vector", "source", "seed", "dim"} <= set(cond.columns)
    assert cond["dim"].unique().tolist() == [16] and all(len(v) == 16 for v in cond["vector"])
    assert cond["source"].unique().tolist() == [f"file:{glove_file}"] and cond["seed"].unique().tolist() == [0]
    assert pd.read_parquet(paths["vectors"])["dim"].unique().tolist() == [24]
    bias = pd.read_parquet(paths["bias"])
    assert len(bias) == 2 * len(COND) and set(bias["space"]) == {"original", "projected"}
    orig = bias[bias["space"] == "original"].set_index("word")
    assert (
        orig.loc["nurse", "gender_projection"]
        > orig.loc["person", "gender_projection"]
        > orig.loc["philosopher", "gender_projection"]
    )
    assert orig.loc["woman", "cos_woman"] == pytest.approx(1.0)
    weat_table = pd.read_parquet(paths["weat"])
    assert set(weat_table["test"]) == set(WEAT_TESTS) and len(weat_table) == 2 * len(WEAT_TESTS)
    dist = json.loads(paths["distortion"].read_text())
    assert dist["conditioning"]["n_pairs"] == 10 and dist["reference"]["n_words"] == 30
    assert dist["k"] == 16 and dist["d"] == 24
    assert paths["figure"].read_bytes()[:4] == b"\x89PNG"


def test_same_config_gives_identical_bytes_and_a_new_seed_new_vectors(tmp_path, glove_file):
    a = _run(tmp_path / "a", _embedding(glove_file))
    b = _run(tmp_path / "b", _embedding(glove_file))
    c = _run(tmp_path / "c", _embedding(glove_file, seed=1))
    for name in ("conditioning", "bias", "weat", "distortion"):
        assert a[name].read_bytes() == b[name].read_bytes(), name
    va, vc = load_conditioning(a["conditioning"]), load_conditioning(c["conditioning"])
    assert not np.allclose(va["nurse"], vc["nurse"])


def test_hard_debias_zeroes_neutral_words_only_and_is_what_training_reads(tmp_path, glove_file):
    paths = _run(
        tmp_path, _embedding(glove_file, transform={"kind": "hard-debias", "scale": 1.0, "gendered_words": []})
    )
    bias = pd.read_parquet(paths["bias"])
    after = bias[bias["space"] == "transformed"].set_index("word")
    before = bias[bias["space"] == "projected"].set_index("word")
    for word in ("nurse", "person", "philosopher"):
        assert abs(after.loc[word, "gender_projection"]) < 1e-9
        assert abs(before.loc[word, "gender_projection"]) > 0.01 or word == "person"
    for word in ("man", "woman"):
        assert after.loc[word, "gender_projection"] == pytest.approx(before.loc[word, "gender_projection"])
    cond = pd.read_parquet(paths["conditioning"])
    assert cond["transform"].unique().tolist() == ["hard-debias"]


def test_bias_scale_doubles_the_gender_component(tmp_path, glove_file):
    paths = _run(tmp_path, _embedding(glove_file, transform={"kind": "bias-scale", "scale": 2.0, "gendered_words": []}))
    bias = pd.read_parquet(paths["bias"])
    after = bias[bias["space"] == "transformed"].set_index("word")
    before = bias[bias["space"] == "projected"].set_index("word")
    for word in ("nurse", "philosopher"):
        assert np.sign(after.loc[word, "gender_projection"]) == np.sign(before.loc[word, "gender_projection"])
        assert abs(after.loc[word, "gender_projection"]) > abs(before.loc[word, "gender_projection"])
    assert pd.read_parquet(paths["conditioning"])["transform"].unique().tolist() == ["bias-scale:2"]


def test_missing_words_fail_in_one_line_and_leave_no_artifact(tmp_path, glove_file):
    out = tmp_path / "out"
    with pytest.raises(DataError) as err:
        _run(out, _embedding(glove_file), words=COND + ["zebra", "quokka"])
    msg = str(err.value)
    assert "\n" not in msg and "'zebra'" in msg and "'quokka'" in msg and str(glove_file) in msg
    assert not out.exists() or not any(out.iterdir())


def test_unreadable_source_file_fails_naming_it_and_leaves_no_artifact(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a word2vec file")
    out = tmp_path / "out"
    with pytest.raises(DataError, match="bad.bin"):
        _run(out, _embedding(bad))
    assert not out.exists() or not any(out.iterdir())


def test_load_conditioning_gives_vectors_and_names_valid_words_for_an_unknown_one(tmp_path, glove_file):
    paths = _run(tmp_path, _embedding(glove_file))
    vectors = load_conditioning(paths["conditioning"])
    assert sorted(vectors) == sorted(COND)
    assert vectors["nurse"].dtype == np.float32 and vectors["nurse"].shape == (16,)
    with pytest.raises(DataError) as err:
        vectors["doctor"]
    assert "'doctor'" in str(err.value) and "'nurse'" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataError, match="does not exist"):
        load_conditioning(tmp_path / "nope.parquet")
