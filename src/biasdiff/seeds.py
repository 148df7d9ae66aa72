"""Seeds derived from config: every image, shard and split decision gets its own stable seed."""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any sequence of printable parts (stable across runs, platforms and Python versions).

    `derive_seed(seed, prompt, index)` is the per-image seed: no two images of a run share it (the seed repo
    reused seeds 0..14 in every batch).
    """
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


def rng_for(*parts: object) -> np.random.Generator:
    """A numpy Generator seeded by `derive_seed(*parts)`."""
    return np.random.default_rng(derive_seed(*parts))


def unit_uniform(*parts: object) -> float:
    """A deterministic number in [0, 1) for the given parts (used for hash-based splits)."""
    return derive_seed(*parts) / float(1 << 63)
