"""Resumable training state, kept OUTSIDE the rule's outputs (Snakemake deletes outputs of failed jobs).

A checkpoint `step-0000120.pt` in the checkpoint directory holds: model, EMA, optimizer and LR-scheduler state
dicts, the torch RNG state, the step count, the log rows so far, and `config_hash` (the training config and
input data it belongs to). `latest_checkpoint` returns only a checkpoint whose hash matches, so a checkpoint of
another config is never resumed. Writes are atomic: a kill during a save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from biasdiff.io import atomic_path

log = logging.getLogger(__name__)
_NAME = re.compile(r"^step-(\d{7})\.pt$")


def config_hash(config: Mapping[str, Any], *files: str | Path) -> str:
    """SHA-256 (16 hex) of the JSON-serialised config plus the bytes of the given input files."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for path in files:
        digest.update(b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def checkpoint_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"step-{step:07d}.pt"


def save_checkpoint(directory: str | Path, step: int, state: Mapping[str, Any], keep: int = 2) -> Path:
    """Write `state` (plus `step`) atomically as step-{step}.pt; delete all but the newest `keep` checkpoints."""
    path = checkpoint_path(directory, step)
    with atomic_path(path) as tmp:
        torch.save({**state, "step": int(step)}, tmp)
    for old in sorted(_list(directory))[:-keep] if keep > 0 else []:
        old[1].unlink(missing_ok=True)
    log.info("checkpoint saved: %s", path)
    return path


def _list(directory: str | Path) -> list[tuple[int, Path]]:
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(directory: str | Path, expected_hash: str) -> dict[str, Any] | None:
    """The newest readable checkpoint whose `config_hash` equals `expected_hash`, or None."""
    for step, path in reversed(_list(directory)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated file from a crash outside atomic writes: skip it, say so
            log.warning("ignoring unreadable checkpoint %s (%s)", path, exc)
            continue
        if state.get("config_hash") != expected_hash:
            log.warning("ignoring checkpoint %s: it belongs to another config/data (hash %s, expected %s)",
                        path, state.get("config_hash"), expected_hash)
            continue
        return state
    return None
