"""Device, dtype and autocast precision: a parameter everywhere, never hard-coded."""

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


PRECISIONS = ("auto", "bf16", "fp32")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for the forward pass: `"auto"` -> bfloat16 on CUDA, None (plain fp32) elsewhere;
    `"bf16"` -> bfloat16 on any device (CPU autocast supports it); `"fp32"` -> None."""
    if precision not in PRECISIONS:
        raise ConfigError(f"config key train.precision: {precision!r} is not one of {list(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cuda" else None
