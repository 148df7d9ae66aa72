"""Load FairFace in either published layout, without downloading anything.

Official layout (github.com/joojs/fairface, dchen236/FairFace): a root directory holding
`fairface_label_train.csv` and `fairface_label_val.csv` (columns file, age, gender, race, service_test; `file` is
relative, e.g. "val/1.jpg") and the images of ONE padding variant under `train/` and `val/`. The two official
image archives (`fairface-img-margin025-trainval.zip`, `fairface-img-margin125-trainval.zip`) both unpack to
`train/` + `val/`; to keep both side by side, unpack each into `<root>/margin025/` or `<root>/margin125/` (or
`fairface-img-margin025-trainval/`, or `0.25/` / `1.25/`). The loader looks there first for the configured padding,
then at `<root>` itself.

Hugging Face Parquet layout (HuggingFaceM4/FairFace): `<root>/<padding>/<split>-*.parquet` with padding "0.25" or
"1.25" and split "train" or "validation"; columns image (struct of bytes and path), age, gender, race (class
indices, see `labels.HF_ORDER`), service_test (bool). `<root>` may also be the padding directory itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from PIL import Image

from biasdiff.errors import DataError
from biasdiff.hfimage import decode_image_cell
from biasdiff.fairface.labels import check_names, names_from_indices

LAYOUTS = ("official", "hf_parquet", "auto")
SPLITS = ("train", "val")
PADDINGS = ("0.25", "1.25")
LABEL_COLUMNS = ("file", "age", "gender", "race", "service_test")
_HF_SPLIT = {"train": "train", "val": "validation"}


@dataclass(frozen=True)
class FairFaceSet:
    """One split of FairFace: `labels` has one row per image.

    Columns: file (str, the official relative path or "<split>/<parquet row>"), age, gender, race (canonical names
    of `labels.CANONICAL`, missing = None), service_test (bool), source (image file path, or Parquet file path),
    row (row within the Parquet file; -1 for the official layout), image_id (`image_id(file)`: the same image has
    the same id in both layouts).
    """

    labels: pd.DataFrame
    layout: str
    split: str
    padding: str
    root: Path

    def __len__(self) -> int:
        return len(self.labels)

    def load_images(self, positions: Sequence[int]) -> list[Image.Image]:
        """RGB PIL images for the given row positions of `labels`, in that order."""
        rows = self.labels.iloc[list(positions)]
        if self.layout == "official":
            return [_open_rgb(Path(src), src) for src in rows["source"]]
        images: dict[int, Image.Image] = {}
        for source, group in rows.groupby("source", sort=True):
            wanted = dict(zip(group["row"].astype(int), group.index))
            for row, cell in _read_parquet_rows(Path(source), sorted(wanted), "image").items():
                images[wanted[row]] = _image_from_cell(cell, f"{source} row {row}")
        return [images[i] for i in rows.index]


def image_id(file: str) -> str:
    """Layout-independent id of a FairFace image: its split-relative path without the extension. The official CSV's
    "train/4.jpg" and the Hugging Face Parquet layout's 4th train row ("train/4") are both "train/4"."""
    return str(PurePosixPath(str(file).replace("\\", "/")).with_suffix(""))


def _open_rgb(path: Path, name: str) -> Image.Image:
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise DataError(f"FairFace image {name} cannot be read: {exc}") from exc


def _image_from_cell(cell, where: str) -> Image.Image:
    """An HF `Image` feature cell: {"bytes": ..., "path": ...} (or raw bytes)."""
    return decode_image_cell(cell, f"FairFace Parquet image at {where}")


def _read_parquet_rows(path: Path, rows: Sequence[int], column: str) -> dict[int, object]:
    """Values of `column` at the given rows of a Parquet file, reading only the row groups that hold them."""
    pf = pq.ParquetFile(path)
    starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
    out: dict[int, object] = {}
    by_group: dict[int, list[int]] = {}
    for r in rows:
        by_group.setdefault(int(np.searchsorted(starts, r, side="right") - 1), []).append(r)
    for g, group_rows in sorted(by_group.items()):
        values = pf.read_row_group(g, columns=[column]).column(column).to_pylist()
        for r in group_rows:
            out[r] = values[r - starts[g]]
    return out


def detect_layout(root: Path, split: str, padding: str) -> str:
    """"official" if the split's label CSV exists, "hf_parquet" if Parquet shards do, else DataError naming both."""
    if (root / f"fairface_label_{split}.csv").is_file():
        return "official"
    if _hf_files(root, split, padding):
        return "hf_parquet"
    raise DataError(
        f"FairFace root {root}: expected label file {root / f'fairface_label_{split}.csv'} (official layout) or "
        f"{root / padding / (_HF_SPLIT[split] + '-*.parquet')} (Hugging Face Parquet layout); found neither"
    )


def _hf_files(root: Path, split: str, padding: str) -> list[Path]:
    pattern = f"{_HF_SPLIT[split]}-*.parquet"
    return sorted((root / padding).glob(pattern)) or sorted(root.glob(pattern))


def _image_base(root: Path, split: str, padding: str) -> Path:
    tag = padding.replace(".", "")
    candidates = [root / f"margin{tag}", root / f"fairface-img-margin{tag}-trainval", root / padding, root]
    for base in candidates:
        if (base / split).is_dir():
            return base
    raise DataError(
        f"FairFace root {root}: no image folder {split}/ for padding {padding}; looked in "
        f"{', '.join(str(c / split) for c in candidates)}"
    )


def _load_official(root: Path, split: str, padding: str) -> pd.DataFrame:
    csv = root / f"fairface_label_{split}.csv"
    if not csv.is_file():
        raise DataError(f"FairFace root {root}: expected label file {csv} (official layout); it does not exist")
    df = pd.read_csv(csv, dtype={"file": str, "age": str, "gender": str, "race": str}, keep_default_na=True)
    missing_cols = [c for c in LABEL_COLUMNS if c not in df.columns]
    if missing_cols:
        raise DataError(f"{csv}: missing column(s) {missing_cols}; expected {list(LABEL_COLUMNS)}")
    df = df[list(LABEL_COLUMNS)].copy()
    for column in ("age", "gender", "race"):
        df[column] = df[column].astype(object).where(df[column].notna(), None)
        check_names(df[column].tolist(), column, str(csv))
    df["service_test"] = df["service_test"].map(_as_bool)
    base = _image_base(root, split, padding)
    sources = [base / f for f in df["file"]]
    missing = [f for f, p in zip(df["file"], sources) if not p.is_file()]
    if missing:
        raise DataError(
            f"{csv}: {len(missing)} of {len(df)} listed image(s) missing under {base}, first: {missing[:5]}"
        )
    df["source"] = [str(p) for p in sources]
    df["row"] = -1
    return df


def _as_bool(value) -> bool | None:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise DataError(f"FairFace column 'service_test' has value {value!r}; valid: True/False")


def _load_hf(root: Path, split: str, padding: str) -> pd.DataFrame:
    files = _hf_files(root, split, padding)
    if not files:
        raise DataError(
            f"FairFace root {root}: expected Parquet shards {root / padding / (_HF_SPLIT[split] + '-*.parquet')} "
            "(Hugging Face layout); found none"
        )
    frames = []
    for path in files:
        schema = pq.read_schema(path)
        needed = ["image", "age", "gender", "race", "service_test"]
        missing_cols = [c for c in needed if c not in schema.names]
        if missing_cols:
            raise DataError(f"{path}: missing column(s) {missing_cols}; expected {needed}")
        table = pq.read_table(path, columns=["age", "gender", "race", "service_test"]).to_pandas()
        part = pd.DataFrame(
            {
                column: names_from_indices(table[column].to_numpy(), column, "hf_parquet")
                for column in ("age", "gender", "race")
            }
        )
        part["service_test"] = table["service_test"].map(_as_bool).to_numpy()
        part["source"] = str(path)
        part["row"] = np.arange(len(table), dtype=np.int64)
        frames.append(part)
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "file", [f"{split}/{i + 1}" for i in range(len(df))])
    return df


def load_fairface(root: str | Path, layout: str = "auto", split: str = "val", padding: str = "0.25") -> FairFaceSet:
    """Read one split of FairFace from `root` (nothing is downloaded).

    layout: "official", "hf_parquet" or "auto" (official if the split's CSV exists, else Parquet shards).
    split: "train" or "val" (the Hugging Face "validation" split). padding: "0.25" or "1.25".
    Raises DataError naming the expected file when the root does not hold the layout, and naming the first few
    missing images when the CSV lists files that are absent.
    """
    root = Path(root)
    padding = str(padding)
    if layout not in LAYOUTS:
        raise DataError(f"FairFace layout {layout!r} is not valid; valid: {list(LAYOUTS)}")
    if split not in SPLITS:
        raise DataError(f"FairFace split {split!r} is not valid; valid: {list(SPLITS)}")
    if padding not in PADDINGS:
        raise DataError(f"FairFace padding {padding!r} is not valid; valid: {list(PADDINGS)}")
    if not root.is_dir():
        raise DataError(f"FairFace root {root} is not a directory; give the folder holding fairface_label_{split}.csv")
    if layout == "auto":
        layout = detect_layout(root, split, padding)
    labels = _load_official(root, split, padding) if layout == "official" else _load_hf(root, split, padding)
    if labels.empty:
        raise DataError(f"FairFace root {root}: split {split} ({layout}) lists no images")
    labels["image_id"] = labels["file"].map(image_id)
    return FairFaceSet(labels=labels.reset_index(drop=True), layout=layout, split=split, padding=padding, root=root)
