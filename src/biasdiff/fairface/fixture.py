"""A FairFace-format fixture built from the pipeline's own labelled procedural people.

The fixture is laid out exactly like the official release (`fairface_label_train.csv`, `fairface_label_val.csv`
with columns file, age, gender, race, service_test; images `train/<n>.jpg`, `val/<n>.jpg`), so the FairFace
loader and audit run on it unchanged and offline. Its labels come from the manifest (the prompt's ground truth):
gender is known for every image. The procedural renderer does not render race or age, so those cells are left
EMPTY (missing) rather than guessed: the audit reports race accuracy only over rows with a race label, which on
this fixture is none (n = 0, shown as such). A side file `fixture_source.csv` (not part of the official layout)
maps every fixture file back to its manifest row (prompt, index, occupation, array_index).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from PIL import Image

from biasdiff.errors import DataError
from biasdiff.io import atomic_directory
from biasdiff.artifacts.manifest import load_images

log = logging.getLogger(__name__)

MANIFEST_GENDER = {"male": "Male", "female": "Female"}
# The manifest columns the fixture reads.
FIXTURE_COLUMNS = ("array_index", "prompt", "index", "gender", "occupation", "split")
JPEG_QUALITY = 95


def run_fairface_fixture(manifest_path: str | Path, array_path: str | Path, outputs: Mapping[str, str | Path],
                         settings: Mapping[str, Any]) -> dict[str, int]:
    """Stage entry point (rule fairface_fixture): write the fixture directory `outputs["root"]` atomically (built in
    a temporary sibling, then renamed).

    manifest_path / array_path: `manifest/images.parquet` and `manifest/images.npy` (uint8, N x H x W x 3).
    The manifest's split "train"/"val" becomes the FairFace split; within a split, files are numbered 1..n in
    manifest (array_index) order. settings["max_per_split"]: keep only the first n of each split (None = all).
    Returns the number of images written per split.
    """
    manifest, images = load_images(manifest_path, array_path, columns=FIXTURE_COLUMNS)  # checked against its hash
    bad = sorted(set(manifest["gender"]) - set(MANIFEST_GENDER))
    if bad:
        raise DataError(f"manifest {manifest_path}: gender value(s) {bad}; valid: {sorted(MANIFEST_GENDER)}")
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] != len(manifest):
        raise DataError(
            f"image array {array_path}: shape {images.shape} does not match {len(manifest)} manifest rows x H x W x 3"
        )
    max_per_split = settings.get("max_per_split")
    counts = {}
    with atomic_directory(outputs["root"]) as tmp:
        sources = []
        for split in ("train", "val"):
            rows = manifest[manifest["split"] == split].sort_values("array_index")
            if max_per_split is not None:
                rows = rows.head(max_per_split)
            (tmp / split).mkdir()
            labels = []
            for n, row in enumerate(rows.itertuples(index=False), start=1):
                file = f"{split}/{n}.jpg"
                Image.fromarray(np.asarray(images[row.array_index])).save(tmp / file, quality=JPEG_QUALITY)
                labels.append(
                    {"file": file, "age": None, "gender": MANIFEST_GENDER[row.gender], "race": None, "service_test": False}
                )
                sources.append(
                    {
                        "file": file,
                        "prompt": row.prompt,
                        "index": int(row.index),
                        "occupation": row.occupation,
                        "array_index": int(row.array_index),
                    }
                )
            pd.DataFrame(labels, columns=["file", "age", "gender", "race", "service_test"]).to_csv(
                tmp / f"fairface_label_{split}.csv", index=False
            )
            counts[split] = len(labels)
            log.info("fixture split %s: %d images", split, len(labels))
        pd.DataFrame(sources).to_csv(tmp / "fixture_source.csv", index=False)
    return counts
