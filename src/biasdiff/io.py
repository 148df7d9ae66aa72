"""Atomic artifact writes: a killed job never leaves a file that looks complete.

Every writer goes to a temporary file in the destination directory, then `os.replace`s it into place
(atomic on POSIX within one filesystem).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # numpy and pandas are imported where they are used: the workflow imports this module at DAG time
    import numpy as np
    import pandas as pd


def current_umask() -> int:
    """The process's umask (read without changing it for longer than one call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def share_with_group(path: str | os.PathLike, directory: bool = False, umask: int | None = None) -> None:
    """Give `path` the mode a plain `open()`/`mkdir()` would have under the (current) umask.

    Temporary files and directories (mkstemp/mkdtemp) are created 0600/0700; without this every artifact of a shared
    cluster project directory would be unreadable to the rest of the group.
    """
    os.chmod(path, (0o777 if directory else 0o666) & ~(current_umask() if umask is None else umask))


def share_tree(root: str | os.PathLike) -> None:
    """`share_with_group` for a directory and everything in it (libraries such as safetensors write 0600 files)."""
    root, umask = Path(root), current_umask()
    share_with_group(root, directory=True, umask=umask)
    for path in root.rglob("*"):
        share_with_group(path, directory=path.is_dir(), umask=umask)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path` (mode as the umask allows), on error
    delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_dir():
            share_with_group(tmp_path, directory=True)
        elif tmp_path.exists():
            share_with_group(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory beside `path`; on success it replaces `path` (any old one is removed first;
    modes as the umask allows), on error it is deleted and an existing `path` is left as it was."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        share_tree(tmp)  # mkdtemp made it 0700, libraries such as safetensors write 0600 files
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def all_or_nothing(paths) -> Iterator[None]:
    """Several artifacts written as one: if the block fails, every one of `paths` is deleted, so none of a set that
    belongs together can look current beside the others' old versions."""
    try:
        yield
    except BaseException:
        for path in paths:
            Path(path).unlink(missing_ok=True)
        raise


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_parquet(df: pd.DataFrame, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write `df` to Parquet atomically (no index column; deterministic bytes for equal frames).

    `metadata`: extra key -> string pairs stored in the file's schema metadata (read back with `parquet_metadata`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        if not metadata:
            df.to_parquet(tmp, index=False, engine="pyarrow")
            return
        table = pa.Table.from_pandas(df, preserve_index=False)
        merged = {**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in metadata.items()}}
        pq.write_table(table.replace_schema_metadata(merged), tmp)


def parquet_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The key -> value schema metadata of a Parquet file (without pandas' own entry)."""
    import pyarrow.parquet as pq

    raw = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items() if k != b"pandas"}


def save_npy(array: np.ndarray, path: str | os.PathLike) -> None:
    """Save an array in .npy format atomically (readable with `np.load(path, mmap_mode="r")`)."""
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


def write_json(obj, path: str | os.PathLike) -> None:
    """Write JSON (sorted keys, indented) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_figure(fig, path: str | os.PathLike, **kwargs) -> None:
    """Save a matplotlib figure atomically, keeping the format of `path`'s suffix."""
    path = Path(path)
    kwargs.setdefault("dpi", 120)
    kwargs.setdefault("bbox_inches", "tight")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write `df` to CSV (no index) atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
