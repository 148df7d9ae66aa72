"""Every word the embed stage will look up is checked against the source's vocabulary before any job runs."""

import numpy as np
import pytest
from gensim.models import KeyedVectors

from biasdiff.embed.vocabulary import check_vocabulary, file_vocabulary, reference_lists
from biasdiff.vectors.wordlists import DEFINITIONAL_PAIRS
from biasdiff.errors import ConfigError

PROMPT_WORDS = {"male_nurse": ["man", "nurse", "person"], "woman": ["woman", "person", "woman"]}


def _vectors(path, words, binary=True):
    kv = KeyedVectors(8)
    kv.add_vectors(list(words), np.random.default_rng(0).normal(size=(len(words), 8)).astype(np.float32))
    kv.save_word2vec_format(str(path), binary=binary)
    return path


def _all_words():
    return sorted({w for ws in PROMPT_WORDS.values() for w in ws} | {w for ws in reference_lists().values() for w in ws})


@pytest.mark.parametrize("binary,suffix", [(True, ".bin"), (False, ".txt")])
def test_file_vocabulary_reads_every_word_of_word2vec_files(tmp_path, binary, suffix):
    words = ["alpha", "Beta", "gamma_delta", "x"] + [f"w{i}" for i in range(300)]
    path = _vectors(tmp_path / f"v{suffix}", words, binary)
    assert file_vocabulary(path) == set(words)
    assert file_vocabulary(path, limit=2) == {"alpha", "Beta"}


def test_missing_conditioning_word_names_prompt_and_word(tmp_path):
    path = _vectors(tmp_path / "v.bin", [w for w in _all_words() if w != "nurse"])
    with pytest.raises(ConfigError, match=r"prompts\.male_nurse\.words: \['nurse'\] not in the vocabulary"):
        check_vocabulary({"kind": "file", "path": str(path)}, PROMPT_WORDS)


def test_missing_reference_words_are_named_with_the_list(tmp_path):
    female = DEFINITIONAL_PAIRS[1][0]
    path = _vectors(tmp_path / "v.bin", [w for w in _all_words() if w != female])
    with pytest.raises(ConfigError, match="definitional pair words") as err:
        check_vocabulary({"kind": "file", "path": str(path)}, PROMPT_WORDS)
    assert female in str(err.value) and "biasdiff.vectors.wordlists" in str(err.value)


def test_capitalised_words_are_found_as_the_stage_finds_them(tmp_path):
    path = _vectors(tmp_path / "v.bin", [w.capitalize() for w in _all_words()])
    check_vocabulary({"kind": "file", "path": str(path)}, PROMPT_WORDS)


def test_a_passed_check_is_cached_until_the_file_or_words_change(tmp_path):
    path = _vectors(tmp_path / "v.bin", _all_words())
    cache = tmp_path / "cache"
    check_vocabulary({"kind": "file", "path": str(path)}, PROMPT_WORDS, cache_dir=cache)
    assert len(list(cache.iterdir())) == 1
    _vectors(path, [w for w in _all_words() if w != "nurse"])  # rewritten: another size, another mtime
    with pytest.raises(ConfigError, match="nurse"):
        check_vocabulary({"kind": "file", "path": str(path)}, PROMPT_WORDS, cache_dir=cache)


def test_the_shipped_glove_wheel_holds_every_word():
    from biasdiff.vectors.sources import GLOVE_WHEEL
    from biasdiff.embed.vocabulary import GLOVE_WHEEL_DISTRIBUTION

    assert GLOVE_WHEEL_DISTRIBUTION == GLOVE_WHEEL
    check_vocabulary({"kind": "glove-wheel"}, PROMPT_WORDS)
    with pytest.raises(ConfigError, match=r"prompts\.x\.words: \['qzxvword'\]"):
        check_vocabulary({"kind": "glove-wheel"}, {"x": ["qzxvword"]})
