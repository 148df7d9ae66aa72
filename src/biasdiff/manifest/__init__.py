"""Stage 2, manifest: one table of every image, a deterministic split, a packed array, contact sheets.

Readers of what this stage writes live in `biasdiff.artifacts.manifest` (shared by every stage).
"""
