"""Seeded stratified sampling of FairFace rows (the seed project shuffled and took the first 250 instead)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from biasdiff.seeds import rng_for

UNKNOWN = "<unknown>"


def stratified_sample(labels: pd.DataFrame, num_data: int, seed: int, by: Sequence[str] = ("gender", "race")) -> np.ndarray:
    """Positions (sorted, int64) of `num_data` rows drawn without replacement, strata in proportion to their size.

    Strata are the combinations of the `by` columns (a missing value is its own stratum). Each stratum gets
    floor(num_data * share) rows; the rows left over go to the strata with the largest remainders (ties by stratum
    name), so the sample's composition is as close to the population's as integers allow. The same labels, seed and
    num_data give the same positions. num_data >= len(labels) returns every row.
    """
    n = len(labels)
    if num_data >= n:
        return np.arange(n, dtype=np.int64)
    keys = labels[list(by)].astype(object).where(labels[list(by)].notna(), UNKNOWN).astype(str).agg("|".join, axis=1)
    groups = {k: np.flatnonzero(keys.to_numpy() == k) for k in sorted(keys.unique())}
    exact = {k: num_data * len(v) / n for k, v in groups.items()}
    alloc = {k: int(np.floor(x)) for k, x in exact.items()}
    left = num_data - sum(alloc.values())
    for k in sorted(groups, key=lambda k: (-(exact[k] - alloc[k]), k))[:left]:
        alloc[k] += 1
    rng = rng_for(seed, "fairface-sample", num_data)
    picked = [rng.choice(groups[k], size=alloc[k], replace=False) for k in sorted(groups) if alloc[k]]
    return np.sort(np.concatenate(picked)).astype(np.int64)
