"""Stage 2, manifest: one table of every image, a deterministic split, a packed array, contact sheets."""

from biasdiff.manifest.build import MANIFEST_COLUMNS, build_manifest, load_images

__all__ = ["MANIFEST_COLUMNS", "build_manifest", "load_images"]
