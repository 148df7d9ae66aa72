"""Device, dtype and autocast precision: a parameter everywhere, never hard-coded."""

from __future__ import annotations

import torch

from biasdiff.errors import ConfigError
from biasdiff.hardware import bf16_unavailable, cpu_bf16_flags

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


def autocast_dtype(precision: str, device: torch.device, key: str = "train.precision") -> torch.dtype | None:
    """The autocast dtype of the forward passes (weights, optimizer state, EMA and losses stay fp32), or None for
    plain fp32.

    `"auto"` -> bfloat16 on CUDA and on CPUs with bf16 matmul units (`biasdiff.hardware.cpu_bf16_flags`: AMX or
    AVX-512 BF16), fp32 on other CPUs; `"bf16"` -> bfloat16 (a CPU without bf16 units is a ConfigError naming `key`:
    emulated bf16 is several times slower than fp32); `"fp32"` -> None.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"config key {key}: {precision!r} is not one of {list(PRECISIONS)}")
    if precision == "fp32":
        return None
    if device.type != "cpu":
        return torch.bfloat16
    if cpu_bf16_flags():
        return torch.bfloat16
    if precision == "bf16":
        raise ConfigError(bf16_unavailable(key))
    return None


def forward_precision(precision: str, device: torch.device, weights: torch.dtype, key: str) -> torch.dtype | None:
    """The autocast dtype for a model whose weights are `weights`: `autocast_dtype(precision, ...)` for fp32 weights;
    None for weights already in half precision (`dtype: float16`/`bfloat16`, or `auto` on CUDA), which run as they are."""
    amp = autocast_dtype(precision, device, key)
    return amp if weights == torch.float32 else None


def precision_label(amp: torch.dtype | None) -> str:
    """"bf16" / "fp16" / "fp32" for an autocast or weights dtype (None = fp32): what a run's forward passes ran in,
    as artifacts record it."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(amp, "fp32")


def autocast(device: torch.device, amp: torch.dtype | None):
    """`torch.autocast` for `amp` on `device`'s type (a no-op context for amp None)."""
    return torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None)
