"""Word-vector sources: every file format loads a small file written here; bad input fails with one line."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from gensim.models import KeyedVectors

from biasdiff.vectors.sources import load_file, load_source, lookup, reference_words, vector_table
from biasdiff.errors import DataError

WORDS = ["man", "woman", "nurse", "philosopher", "person", "Mary"]


@pytest.fixture
def small_kv() -> KeyedVectors:
    rng = np.random.default_rng(3)
    kv = KeyedVectors(6, count=0, dtype=np.float32)
    kv.add_vectors(WORDS, rng.normal(size=(len(WORDS), 6)).astype(np.float32))
    return kv


def _write_glove(kv: KeyedVectors, path) -> None:
    lines = [" ".join([w] + [f"{x:.6f}" for x in kv[w]]) for w in kv.index_to_key]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("vectors.bin", "word2vec-binary"),
        ("vectors.txt", "word2vec-text"),
        ("glove.txt", "glove-text"),
        ("vectors.kv", "keyedvectors"),
    ],
)
@pytest.mark.parametrize("explicit", [True, False], ids=["explicit-format", "auto-format"])
def test_each_file_format_loads_the_vectors_written(tmp_path, small_kv, name, fmt, explicit):
    path = tmp_path / name
    if fmt == "word2vec-binary":
        small_kv.save_word2vec_format(str(path), binary=True)
    elif fmt == "word2vec-text":
        small_kv.save_word2vec_format(str(path), binary=False)
    elif fmt == "glove-text":
        _write_glove(small_kv, path)
    else:
        small_kv.save(str(path))
    source = {"kind": "file", "path": str(path), "format": fmt if explicit else "auto"}
    kv, label = load_source(source)
    assert label == f"file:{path}"
    assert kv.index_to_key == WORDS
    np.testing.assert_allclose(lookup(kv, WORDS, label), np.stack([small_kv[w] for w in WORDS]), atol=1e-5)


def test_table_has_word_vector_source_dim(small_kv):
    table = vector_table(["man", "nurse"], lookup(small_kv, ["man", "nurse"], "s"), "s")
    assert list(table.columns) == ["word", "vector", "source", "dim"]
    assert table["dim"].tolist() == [6, 6] and len(table["vector"][0]) == 6
    assert table["source"].unique().tolist() == ["s"]


def test_lookup_falls_back_to_lower_and_capitalised_case(small_kv):
    np.testing.assert_array_equal(lookup(small_kv, ["MAN", "mary"], "s"), np.stack([small_kv["man"], small_kv["Mary"]]))


def test_missing_words_are_all_listed_in_one_error_with_the_source(small_kv):
    with pytest.raises(DataError) as err:
        lookup(small_kv, ["man", "zebra", "nurse", "quokka"], "file:x.bin")
    msg = str(err.value)
    assert "\n" not in msg
    assert "'zebra'" in msg and "'quokka'" in msg and "file:x.bin" in msg and "'man'" not in msg


def test_unreadable_file_error_names_it(tmp_path):
    bad = tmp_path / "broken.bin"
    bad.write_bytes(b"\x00\x01garbage that is not word2vec")
    with pytest.raises(DataError, match="broken.bin") as err:
        load_file(bad, "word2vec-binary")
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="nowhere.txt.*does not exist"):
        load_source({"kind": "file", "path": str(tmp_path / "nowhere.txt")})


def test_unknown_kind_and_empty_path_are_rejected():
    with pytest.raises(DataError, match="glove-wheel"):
        load_source({"kind": "fasttext"})
    with pytest.raises(DataError, match="embedding.source.path"):
        load_source({"kind": "file", "path": None})


def test_gensim_data_without_network_says_to_set_a_local_path(tmp_path, monkeypatch):
    import gensim.downloader as api

    def no_network(*args, **kwargs):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(api, "BASE_DIR", str(tmp_path / "gensim-data"))
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(DataError) as err:
        load_source({"kind": "gensim-data", "name": "word2vec-google-news-300"})
    msg = str(err.value)
    assert "\n" not in msg
    assert "word2vec-google-news-300" in msg and "embedding.source.path" in msg and "local" in msg


def test_reference_words_are_frequent_alphabetic_and_skip_excluded():
    kv = KeyedVectors(2, count=0, dtype=np.float32)
    kv.add_vectors(["the", ",", "man", "of", "1999", "nurse", "to"], np.ones((7, 2), dtype=np.float32))
    assert reference_words(kv, 3, exclude=["man"]) == ["the", "of", "nurse"]
