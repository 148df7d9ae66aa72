"""Training precision: bf16 autocast on CUDA (really active, unlike the seed's), fp32 on CPU unless asked."""

from __future__ import annotations

import torch

from biasdiff.errors import ConfigError

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
