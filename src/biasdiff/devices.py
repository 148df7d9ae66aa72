"""Device and dtype choice: a parameter everywhere, never hard-coded."""

from __future__ import annotations

import torch

from biasdiff.errors import ConfigError

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` → CUDA when available, else CPU; `cuda`/`cuda:N` when none is available → ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available here; use 'auto' or 'cpu'")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto` → float16 on CUDA, float32 elsewhere; otherwise one of float32, float16, bfloat16."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if name not in _DTYPES:
        raise ConfigError(f"dtype {name!r} is not one of {['auto', *_DTYPES]}")
    return _DTYPES[name]
