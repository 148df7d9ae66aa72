"""Aggregate shards into `images.parquet` (metadata, in packed order) and `images.npy` (uint8 N×H×W×3 at the training size)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from biasdiff.errors import DataError
from biasdiff.grid import save_grid
from biasdiff.io import file_sha256, save_npy, write_csv, write_parquet
from biasdiff.artifacts.integrity import INTEGRITY_KEY
from biasdiff.artifacts.manifest import MANIFEST_COLUMNS
from biasdiff.seeds import unit_uniform
from biasdiff.artifacts.shards import SHARD_COLUMNS

log = logging.getLogger(__name__)

def split_of(split_seed: int, prompt: str, index: int, val_fraction: float) -> str:
    """'val' with probability `val_fraction`, decided by a hash of (split_seed, prompt, index).

    Stable when a prompt's count grows: an image keeps its split forever.
    """
    return "val" if unit_uniform("split", split_seed, prompt, index) < val_fraction else "train"


def decode_png(data: bytes, shard: str, row: int) -> Image.Image:
    """Decode one PNG; a corrupt one raises DataError naming the shard and row."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"corrupt PNG in shard {shard} row {row} ({exc}); delete that shard and rerun to regenerate it") from exc
    return image.convert("RGB")


def _read_shard(path: str) -> pd.DataFrame:
    try:
        df = pq.read_table(path).to_pandas()
    except Exception as exc:  # pyarrow raises several types for truncated/corrupt files
        raise DataError(f"cannot read shard {path} ({exc}); delete it and rerun to regenerate it") from exc
    missing = [c for c in SHARD_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"shard {path} lacks columns {missing}; expected {SHARD_COLUMNS}")
    return df


def run_manifest(shard_paths: Sequence[str], outputs: Mapping[str, Any], settings: Mapping[str, Any]) -> pd.DataFrame:
    """Stage entry point (rule build_manifest): every manifest artifact from the shards.

    outputs: manifest (.parquet), array (.npy), counts (.csv), contacts {prompt: .png}.
    settings: image_size, prompts {name: {words, attributes}}, manifest {val_fraction, split_seed, contact_sheet_n}.
    Rows are ordered by prompt (config order) then global index, so equal inputs give byte-identical outputs.
    """
    params = settings
    manifest_path, array_path, counts_path = outputs["manifest"], outputs["array"], outputs["counts"]
    contact_paths = outputs.get("contacts") or {}
    size = int(params["image_size"])
    prompts = params["prompts"]
    mcfg = params["manifest"]
    order = {name: i for i, name in enumerate(prompts)}

    frames = []
    for path in shard_paths:
        df = _read_shard(path)
        unknown = set(df["prompt"]) - set(prompts)
        if unknown:
            raise DataError(f"shard {path} holds prompts {sorted(unknown)} that the config does not list; valid: {list(prompts)}")
        df = df.assign(shard_file=str(path), shard_row=np.arange(len(df), dtype=np.int64))
        frames.append(df)
    if not frames:
        raise DataError("no shards given to the manifest; configure at least one prompt")
    shards = pd.concat(frames, ignore_index=True)
    shards["_order"] = shards["prompt"].map(order)
    shards = shards.sort_values(["_order", "index"], kind="stable").reset_index(drop=True)
    dupes = shards.duplicated(["prompt", "index"])
    if dupes.any():
        first = shards.loc[dupes].iloc[0]
        raise DataError(f"image {first['prompt']}#{first['index']} appears in more than one shard ({first['shard_file']})")

    array = np.empty((len(shards), size, size, 3), dtype=np.uint8)
    for i, (png, shard, row) in enumerate(
        tqdm(zip(shards["png"], shards["shard_file"], shards["shard_row"]), total=len(shards), desc="decode", mininterval=2.0)
    ):
        image = decode_png(png, shard, int(row))
        if image.size != (size, size):
            image = image.resize((size, size), Image.LANCZOS)
        array[i] = np.asarray(image)

    manifest = pd.DataFrame(
        {
            "array_index": np.arange(len(shards), dtype=np.int64),
            "prompt": shards["prompt"].astype(str),
            "index": shards["index"].astype(np.int64),
            "words": [list(prompts[p]["words"]) for p in shards["prompt"]],
            "gender": shards["gender"].astype(str),
            "occupation": shards["occupation"].astype(str),
            "seed": shards["seed"].astype(np.int64),
            "split": [
                split_of(mcfg["split_seed"], p, int(i), mcfg["val_fraction"]) for p, i in zip(shards["prompt"], shards["index"])
            ],
            "shard_file": shards["shard_file"].astype(str),
            "shard_row": shards["shard_row"].astype(np.int64),
            "backend": shards["backend"].astype(str),
            "model_id": shards["model_id"].astype(str),
        },
        columns=MANIFEST_COLUMNS,
    )
    counts = count_table(manifest)
    write_manifest(manifest, array, manifest_path, array_path, shard_paths)
    write_csv(counts, counts_path)
    for prompt, path in contact_paths.items():
        rows = np.flatnonzero(manifest["prompt"].to_numpy() == prompt)[: int(mcfg["contact_sheet_n"])]
        sheet_sources = [decode_png(shards["png"].iat[r], shards["shard_file"].iat[r], int(shards["shard_row"].iat[r])) for r in rows]
        save_grid(sheet_sources, path, pad=0, title=f"{prompt} ({len(sheet_sources)} images)")
    log.info("manifest: %d images of %d prompts, %d val", len(manifest), manifest["prompt"].nunique(), (manifest["split"] == "val").sum())
    return manifest


def write_manifest(manifest: pd.DataFrame, array: np.ndarray, manifest_path: str | Path, array_path: str | Path,
                   shard_paths: Sequence[str | Path] = ()) -> None:
    """Write the packed array, then the manifest with the content hashes of the array and the shards it came from
    (`recorded_integrity` reads them back; every reader verifies the array against them)."""
    save_npy(array, array_path)
    record = {"images_sha256": file_sha256(array_path), "images_shape": list(array.shape),
              "shards_sha256": {str(p): file_sha256(p) for p in shard_paths}}
    write_parquet(manifest, manifest_path, metadata={INTEGRITY_KEY: json.dumps(record, sort_keys=True)})


def count_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Images per prompt and split (columns prompt, gender, occupation, train, val, total)."""
    table = (
        manifest.groupby(["prompt", "gender", "occupation", "split"], sort=False).size().unstack("split", fill_value=0).reset_index()
    )
    for split in ("train", "val"):
        if split not in table:
            table[split] = 0
    table["total"] = table["train"] + table["val"]
    return table[["prompt", "gender", "occupation", "train", "val", "total"]]
