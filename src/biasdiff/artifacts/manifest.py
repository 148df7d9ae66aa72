"""Reading the manifest (`results/manifest/images.parquet`) and its packed array (`images.npy`): the one column
contract and the one reader every stage uses.

The manifest lists every image in packed order; `array[row.array_index]` is that image's uint8 (H, W, 3) pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from biasdiff.artifacts.integrity import RERUN_MANIFEST, verify_images
from biasdiff.errors import DataError

# The manifest's columns, in the order the manifest stage writes them.
MANIFEST_COLUMNS = [
    "array_index",
    "prompt",
    "index",
    "words",
    "gender",
    "occupation",
    "seed",
    "split",
    "shard_file",
    "shard_row",
    "backend",
    "model_id",
]
SPLITS = ("train", "val")


def require_columns(manifest: pd.DataFrame, needed: Sequence[str], source: str | Path = "manifest") -> None:
    """DataError naming the missing columns (and the rule that rebuilds the manifest) if `manifest` lacks any."""
    missing = [c for c in needed if c not in manifest.columns]
    if missing:
        raise DataError(f"{source} lacks column(s) {missing}; needs {list(needed)}; {RERUN_MANIFEST}")


def read_manifest(manifest_path: str | Path, columns: Sequence[str] = ("array_index",)) -> pd.DataFrame:
    """The manifest table alone (no pixels), checked to hold `columns` (the ones the caller uses)."""
    if not Path(manifest_path).is_file():
        raise DataError(f"{manifest_path} does not exist; run the manifest rule (snakemake build_manifest) first")
    manifest = pd.read_parquet(manifest_path)
    require_columns(manifest, columns, manifest_path)
    return manifest


def load_images(manifest_path: str | Path, array_path: str | Path, split: str | None = None,
                columns: Sequence[str] = ("array_index", "split")) -> tuple[pd.DataFrame, np.ndarray]:
    """The manifest (optionally one split) and the packed uint8 array (memory-mapped, N×H×W×3).

    The array's bytes are checked against the content hash the manifest records (`verify_images`) first, so a
    changed or corrupt array is an error naming the file, never pixels silently trained on.
    Rows of the returned frame keep their `array_index`, so `array[df.array_index]` gives their pixels. `columns`:
    the manifest columns the caller uses (a manifest without them is a DataError naming them).
    """
    for path in (manifest_path, array_path):
        if not Path(path).is_file():
            raise DataError(f"{path} does not exist; run the manifest rule (snakemake build_manifest) first")
    verify_images(manifest_path, array_path)
    manifest = read_manifest(manifest_path, columns)
    array = np.load(array_path, mmap_mode="r", allow_pickle=False)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise DataError(f"image array {array_path} is {array.dtype} {array.shape}, not uint8 (N, H, W, 3); {RERUN_MANIFEST}")
    if len(array) != len(manifest):
        raise DataError(f"{array_path} has {len(array)} images but {manifest_path} lists {len(manifest)}; {RERUN_MANIFEST}")
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is not one of {list(SPLITS)}")
        manifest = manifest[manifest["split"] == split]
    return manifest, array
