"""The one pixel convention: artifacts hold uint8 (N, H, W, 3) images; models see float (N, 3, H, W) in [-1, 1].

x = u / 127.5 - 1 maps 0..255 onto [-1, 1] exactly (0 -> -1, 255 -> 1); the inverse clamps to [-1, 1] and rounds.
"""

from __future__ import annotations

import numpy as np
import torch

from biasdiff.errors import DataError


def to_unit(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) array or tensor -> float32 (N, 3, H, W) in [-1, 1] (on the tensor's device)."""
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise DataError(f"images must be uint8 (N, H, W, 3); got {x.dtype} {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3) numpy array, clamped and rounded."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()
