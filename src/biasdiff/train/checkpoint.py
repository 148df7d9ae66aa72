"""Resumable training state, kept OUTSIDE the rule's outputs (Snakemake deletes outputs of failed jobs).

A checkpoint `step-0000120-<key>.pt` in the checkpoint directory holds: model, EMA, optimizer and LR-scheduler state
dicts, the torch RNG state, the step count, the log rows so far, and `config_hash`, the key of everything the weights
depend on (the training config, the code, the manifest -- whose bytes carry the content hash of the packed pixels --
and the conditioning vectors). The key is in the file name too, so a directory can be searched and pruned without
loading anything: `latest_checkpoint` returns only a checkpoint of the current key, and `save_checkpoint` keeps the
newest `keep` checkpoints of the current key and deletes every other one (older steps, stale keys, the old unkeyed
names), never the one it has just written. Writes are atomic: a kill during a save leaves the previous checkpoint
intact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from biasdiff.io import atomic_path, file_sha256

log = logging.getLogger(__name__)
_NAME = re.compile(r"^step-(\d{7})(?:-([0-9a-f]+))?\.pt$")


def config_hash(config: Mapping[str, Any], *files: str | Path) -> str:
    """SHA-256 (16 hex) of the JSON-serialised config plus the bytes of the given input files."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for path in files:
        digest.update(b"\0" + file_sha256(path).encode())
    return digest.hexdigest()[:16]


def checkpoint_path(directory: str | Path, step: int, key: str) -> Path:
    return Path(directory) / f"step-{step:07d}-{key}.pt"


def save_checkpoint(directory: str | Path, step: int, state: Mapping[str, Any], keep: int = 2) -> Path:
    """Write `state` (plus `step`) atomically as step-{step}-{state['config_hash']}.pt, then prune the directory.

    Pruning keeps the newest `keep` (at least 1) checkpoints of this key up to `step`, the new one always among
    them, and deletes everything else: older steps of this key, checkpoints of other keys (stale: their config,
    code or data is not the current one) and later steps of this key that were skipped as unreadable.
    """
    key = str(state["config_hash"])
    path = checkpoint_path(directory, step, key)
    with atomic_path(path) as tmp:
        torch.save({**state, "step": int(step)}, tmp)
    mine = [p for s, k, p in _list(directory) if k == key and s < step]
    kept = {path, *mine[len(mine) - max(keep - 1, 0):]} if keep > 1 else {path}
    for _, _, old in _list(directory):
        if old not in kept:
            old.unlink(missing_ok=True)
    log.info("checkpoint saved: %s", path)
    return path


def _list(directory: str | Path) -> list[tuple[int, str, Path]]:
    """(step, key, path) of every checkpoint file in `directory`, by step; key "" for the old unkeyed names."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), m.group(2) or "", p))
    return sorted(found)


def latest_checkpoint(directory: str | Path, expected_hash: str) -> dict[str, Any] | None:
    """The newest readable checkpoint of key `expected_hash`, or None (other keys are never opened)."""
    others = 0
    for step, key, path in reversed(_list(directory)):
        if key != expected_hash:
            others += 1
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated file from a crash outside atomic writes: skip it, say so
            log.warning("ignoring unreadable checkpoint %s (%s)", path, exc)
            continue
        if state.get("config_hash") != expected_hash:
            log.warning("ignoring checkpoint %s: its content belongs to key %s, not %s", path,
                        state.get("config_hash"), expected_hash)
            continue
        return state
    if others:
        log.info("%d checkpoint(s) in %s belong to another config, code or data and are not resumed", others, directory)
    return None
