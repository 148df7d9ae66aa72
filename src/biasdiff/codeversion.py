"""Content hashes of library subpackages, passed to rules as `params` so that a change to the code a stage runs
reruns that stage (Snakemake tracks script files, not the library they import)."""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def code_version(*modules: str) -> str:
    """SHA-256 (first 16 hex digits) over the sources of the named subpackages/modules of biasdiff.

    `code_version("synth", "io")` hashes `src/biasdiff/synth/**/*.py` and `src/biasdiff/io.py`; a single module of a
    subpackage is named by its path, e.g. `"sample/samplers"`. Unknown names raise ValueError naming the valid ones.
    """
    digest = hashlib.sha256()
    for name in sorted(set(modules)):
        target = PACKAGE_DIR / name
        if target.is_dir():
            files = sorted(target.rglob("*.py"))
        elif target.with_suffix(".py").is_file():
            files = [target.with_suffix(".py")]
        else:
            valid = sorted(p.stem for p in PACKAGE_DIR.iterdir() if p.suffix == ".py" or p.is_dir())
            raise ValueError(f"no biasdiff module {name!r}; valid: {[v for v in valid if not v.startswith('_')]}")
        for path in files:
            digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
