"""The manifest's record of what it was built from and what it wrote: content hashes of the packed array and of the
shards, stored in the Parquet file's schema metadata. Readers verify the array against it (`verify_images`), and the
workflow does so once while it builds the DAG (`stale_array_message`). Light imports only: the Snakefile uses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from biasdiff.errors import DataError
from biasdiff.io import file_sha256, parquet_metadata

# Parquet schema-metadata key under which the manifest records content hashes of its array and shards.
INTEGRITY_KEY = "biasdiff.integrity"
RERUN_MANIFEST = "rebuild it: snakemake --forcerun build_manifest"


def recorded_integrity(manifest_path: str | Path) -> dict[str, Any]:
    """What the manifest stage recorded about its inputs and outputs: images_sha256, images_shape, shards_sha256.

    A manifest without the record (written by an older version) or with an unreadable one raises DataError.
    """
    try:
        meta = parquet_metadata(manifest_path)
    except Exception as exc:  # pyarrow raises several types for truncated/corrupt files
        raise DataError(f"cannot read manifest {manifest_path} ({type(exc).__name__}); {RERUN_MANIFEST}") from exc
    try:
        record = json.loads(meta[INTEGRITY_KEY])
        return {"images_sha256": str(record["images_sha256"]), "images_shape": list(record["images_shape"]),
                "shards_sha256": dict(record["shards_sha256"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"manifest {manifest_path} carries no content hash of its image array (written by an older "
                        f"version?); {RERUN_MANIFEST}") from exc


def verify_images(manifest_path: str | Path, array_path: str | Path) -> str:
    """Check that the packed array's bytes are the ones the manifest stage wrote; returns their SHA-256.

    A changed, truncated or foreign array raises DataError naming the file and the rule to rerun.
    """
    expected = recorded_integrity(manifest_path)["images_sha256"]
    actual = file_sha256(array_path)
    if actual != expected:
        raise DataError(f"image array {array_path} does not match the content hash recorded in {manifest_path} "
                        f"(changed or corrupted after the manifest was built); {RERUN_MANIFEST}")
    return actual


def stale_array_message(manifest_path: str | Path, array_path: str | Path) -> str | None:
    """Why an existing array cannot be used with an existing manifest (one line), or None when it can or when either
    file is missing (then the manifest rule will make both). For a check before any job runs."""
    if not (Path(manifest_path).is_file() and Path(array_path).is_file()):
        return None
    try:
        verify_images(manifest_path, array_path)
    except DataError as exc:
        return str(exc)
    return None
