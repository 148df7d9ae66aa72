"""StableBias image datasets (Hugging Face Parquet layout of stable-bias/professions, professions-v2, ...) and
CLIP zero-shot gender labels of their images.

Layout: one Parquet file, or a directory searched recursively for `*.parquet`, with at least the columns
profession (str; underscores read as spaces), model (str, the generating model) and image (HF Image struct of bytes
and path, or raw bytes). Files are streamed in record batches, so the dataset never has to fit in memory.

Labelling as in the seed project: for each image of profession p, CLIP scores the prompts
["a photo of a {p}, man", "a photo of a {p}, woman"]; the label is the argmax ("man" or "woman").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
from PIL import Image

from biasdiff.errors import DataError
from biasdiff.hfimage import decode_image_cell
from biasdiff.stablebias.resources import profession_key

log = logging.getLogger(__name__)

REQUIRED = ("profession", "model", "image")
GENDER_LABELS = ("man", "woman")


def dataset_files(path: str | Path) -> list[Path]:
    """The Parquet files of a StableBias dataset path (a file or a directory searched recursively)."""
    path = Path(path)
    if path.is_file():
        return [path]
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else []
    if not files:
        raise DataError(f"StableBias dataset {path}: expected a Parquet file or a directory of *.parquet; found none")
    for f in files:
        names = pq.read_schema(f).names
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise DataError(f"StableBias dataset file {f}: missing column(s) {missing}; expected {list(REQUIRED)}")
    return files


def decode_image(cell, where: str) -> Image.Image:
    return decode_image_cell(cell, f"StableBias image at {where}")


def iter_images(
    path: str | Path, max_per_group: int | None = None, batch_rows: int = 64
) -> Iterator[tuple[str, str, list[Image.Image]]]:
    """Yield (model, profession key, images) batches in file order; at most `max_per_group` images per
    (model, profession), taken in file order (the seed took the first 50)."""
    seen: dict[tuple[str, str], int] = {}
    for f in dataset_files(path):
        pf = pq.ParquetFile(f)
        offset = 0
        for batch in pf.iter_batches(batch_size=batch_rows, columns=list(REQUIRED)):
            cols = batch.to_pydict()
            groups: dict[tuple[str, str], list[Image.Image]] = {}
            for i, (model, prof, cell) in enumerate(zip(cols["model"], cols["profession"], cols["image"])):
                key = (str(model), profession_key(prof))
                if max_per_group is not None and seen.get(key, 0) >= max_per_group:
                    continue
                seen[key] = seen.get(key, 0) + 1
                groups.setdefault(key, []).append(decode_image(cell, f"{f} row {offset + i}"))
            offset += batch.num_rows
            for (model, prof), imgs in groups.items():
                yield model, prof, imgs


@torch.no_grad()
def clip_gender_probs(model, processor, images: Sequence[Image.Image], profession: str, device="cpu") -> np.ndarray:
    """CLIP zero-shot probabilities (n, 2) over ["a photo of a {p}, man", "a photo of a {p}, woman"] (softmax of
    logits_per_image); column 0 = man, 1 = woman. `processor` is a CLIPProcessor (tokenizer + image processor)."""
    prompts = [f"a photo of a {profession}, {g}" for g in GENDER_LABELS]
    inputs = processor(text=prompts, images=list(images), return_tensors="pt", padding=True)
    inputs = {k: v.to(device) for k, v in inputs.items()}
    logits = model(**inputs).logits_per_image.float()
    return logits.softmax(dim=1).cpu().numpy()


def load_clip(model_id: str, device="cpu", dtype=torch.float32):
    """(CLIPModel, CLIPProcessor) by hub id or local directory; DataError naming the model if it cannot be loaded."""
    from transformers import CLIPModel, CLIPProcessor

    try:
        processor = CLIPProcessor.from_pretrained(model_id)
        model = CLIPModel.from_pretrained(model_id, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"CLIP model {model_id!r} could not be loaded ({type(exc).__name__}); give a local directory holding a "
            "CLIPModel and its processor (e.g. a save_pretrained copy of openai/clip-vit-base-patch32)"
        ) from exc
    return model.to(device).eval(), processor


def label_dataset(path, model, processor, professions: pd.DataFrame, max_per_group=None, device="cpu") -> pd.DataFrame:
    """Fraction of women per (generating model, profession) by CLIP zero-shot labels.

    professions: frame with profession (display name) and key. Returns rows for every generating model found x every
    profession: model, profession, key, n_images, n_woman, frac_woman (NaN and status "no images" when a profession
    has no image for that model - never a division by zero), status, source ("clip_zero_shot").
    """
    names = dict(zip(professions["key"], professions["profession"]))
    counts: dict[tuple[str, str], list[int]] = {}
    unknown: set[str] = set()
    for gen_model, key, imgs in iter_images(path, max_per_group):
        if key not in names:
            unknown.add(key)
            continue
        probs = clip_gender_probs(model, processor, imgs, names[key], device)
        c = counts.setdefault((gen_model, key), [0, 0])
        c[0] += len(imgs)
        c[1] += int((probs.argmax(1) == 1).sum())
    if unknown:
        log.warning("StableBias dataset: %d profession(s) not in the 150-profession list skipped: %s", len(unknown), sorted(unknown)[:10])
    if not counts:
        raise DataError(f"StableBias dataset {path}: no image of any of the {len(names)} professions")
    rows = []
    for gen_model in sorted({m for m, _ in counts}):
        for key, prof in names.items():
            n, w = counts.get((gen_model, key), [0, 0])
            rows.append(
                {"model": gen_model, "profession": prof, "key": key, "n_images": n, "n_woman": w,
                 "frac_woman": w / n if n else float("nan"), "status": "ok" if n else "no images",
                 "source": "clip_zero_shot"}
            )
    return pd.DataFrame(rows)
