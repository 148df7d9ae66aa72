"""Shared noise and the (image × timestep × draw) evaluation loop every score audit builds on.

The noise of image i at timestep t and draw r is drawn from its own generator seeded by
`derive_seed(image_seed[i], t, r)`: it is shared by every condition evaluated on that image at that (t, r), and it does
not depend on batch size, on which other timesteps are evaluated, or on the method (ScoreDecomp and the ELBO
classifier see the same ε at the same t). A run over a subset of timesteps therefore reproduces exactly the
evaluations of the larger run.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from biasdiff.seeds import derive_seed


def shared_noise(image_seeds: Sequence[int], t: int | str, draw: int, shape: Sequence[int]) -> torch.Tensor:
    """Noise (B, *shape) float32 on CPU: row i from a generator seeded by derive_seed(image_seeds[i], t, draw).

    `t` is a timestep, or a tag such as "across-t" for noise shared by several timesteps.
    """
    rows = []
    for seed in image_seeds:
        gen = torch.Generator().manual_seed(derive_seed(int(seed), t, int(draw)))
        rows.append(torch.randn(tuple(shape), generator=gen))
    return torch.stack(rows) if rows else torch.zeros((0, *shape))


def iter_noised(model, x0: torch.Tensor, image_seeds: Sequence[int], timesteps: Sequence[int], n_draws: int,
                chunk: int) -> Iterator[tuple[slice, int, int, int, torch.Tensor, torch.Tensor]]:
    """Yield (rows, t_index, t, draw, x_t (B, ...), noise (B, ...)) over image chunks × timesteps × draws.

    x0: (N, ...) already encoded; image_seeds: (N,) ints. Each chunk has at most `chunk` images.
    """
    if len(image_seeds) != x0.shape[0]:
        raise ValueError(f"{len(image_seeds)} image seeds for {x0.shape[0]} images")
    seeds = np.asarray(image_seeds, dtype=np.int64)
    for start in range(0, x0.shape[0], max(1, chunk)):
        rows = slice(start, min(start + max(1, chunk), x0.shape[0]))
        x = x0[rows]
        for ti, t in enumerate(timesteps):
            for r in range(n_draws):
                noise = shared_noise(seeds[rows], t, r, x.shape[1:]).to(x.device)
                tt = torch.full((x.shape[0],), int(t), dtype=torch.long)
                yield rows, ti, int(t), r, model.add_noise(x, noise, tt), noise
