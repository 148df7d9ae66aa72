"""Shard planning and the shard file format."""

from __future__ import annotations

SHARD_COLUMNS = [
    "png",
    "prompt",
    "prompt_text",
    "index",
    "seed",
    "backend",
    "model_id",
    "model_revision",
    "width",
    "height",
    "gender",
    "occupation",
]


def shard_ranges(count: int, shard_size: int) -> list[tuple[int, int]]:
    """Half-open global index ranges [start, stop) of each shard of a prompt with `count` images.

    Shard i always covers [i*shard_size, min((i+1)*shard_size, count)), so raising `count` by a multiple of
    `shard_size` only appends shards.
    """
    if count < 1 or shard_size < 1:
        raise ValueError(f"count and shard_size must be positive (got {count}, {shard_size})")
    return [(start, min(start + shard_size, count)) for start in range(0, count, shard_size)]
