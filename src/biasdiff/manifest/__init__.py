"""Stage 2, manifest: one table of every image, a deterministic split, a packed array, contact sheets.

The names below are imported on first use (PEP 562), so that `integrity`, which the workflow imports while it builds
the DAG, does not pull in PIL and the builder; the import statements stay in this file for the rules' code hashes.
"""

__all__ = ["MANIFEST_COLUMNS", "build_manifest", "load_images", "recorded_integrity", "stale_array_message",
           "verify_images", "write_manifest"]


def __getattr__(name: str):
    if name in ("MANIFEST_COLUMNS", "build_manifest", "load_images", "write_manifest"):
        from biasdiff.manifest import build

        return getattr(build, name)
    if name in ("recorded_integrity", "stale_array_message", "verify_images"):
        from biasdiff.manifest import integrity

        return getattr(integrity, name)
    raise AttributeError(f"module 'biasdiff.manifest' has no attribute {name!r}")
