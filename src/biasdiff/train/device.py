"""Device and dtype choice: "auto" means CUDA when available, else CPU; nothing hard-codes "cuda"."""

from __future__ import annotations

import torch

from biasdiff.errors import ConfigError

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`"auto"` -> cuda if available else cpu; otherwise the named device (error if CUDA is asked for but absent)."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return dev


def resolve_dtype(dtype: str | torch.dtype = "auto", device: torch.device | None = None) -> torch.dtype:
    """Weights dtype for inference: `"auto"` -> float32 (the UNet is small; autocast handles bf16 on CUDA)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.float32
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype {dtype!r} is not valid; use one of {['auto', *sorted(_DTYPES)]}")
    return _DTYPES[dtype]


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype for training: `"auto"` -> bfloat16 on CUDA, None (fp32) on CPU; `"fp32"` -> None."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    raise ConfigError(f"config key train.precision: {precision!r} is not one of ['auto', 'bf16', 'fp32']")
