"""Stage 2, manifest: one table of every image, a deterministic split, a packed array, contact sheets."""

from biasdiff.manifest.build import MANIFEST_COLUMNS, build_manifest, load_images, write_manifest
from biasdiff.manifest.integrity import recorded_integrity, stale_array_message, verify_images

__all__ = ["MANIFEST_COLUMNS", "build_manifest", "load_images", "recorded_integrity", "stale_array_message",
           "verify_images", "write_manifest"]
