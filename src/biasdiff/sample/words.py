"""Which conditions the sample stage draws. Imports nothing heavy: the workflow calls it while building the DAG."""

from __future__ import annotations

from typing import Any, Mapping

from biasdiff.artifacts.conditioning import NULL_WORD
from biasdiff.errors import ConfigError


def sample_words(prompts: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The words the sample stage draws: the union of prompts.*.words (first-seen order), then the null condition."""
    words: list[str] = []
    for name, spec in prompts.items():
        for word in spec["words"]:
            if word == NULL_WORD:
                raise ConfigError(
                    f"config key prompts.{name}.words: {NULL_WORD!r} is reserved for the null (unconditional) "
                    "condition; use another word"
                )
            if word not in words:
                words.append(word)
    return words + [NULL_WORD]
