"""Tiny stand-ins, in the real on-disk formats, for everything configs/paper.yaml reads from the hub or the disk, so
the paper configuration runs through the workflow offline (tests/test_paper_workflow.py).

- `build_sd21_pipeline(dir)`: an SD-2.1-shaped StableDiffusionPipeline (v-prediction DDIM scheduler, CLIP tokenizer
  and CLIP text encoder, VAE, cross-attention UNet) with random weights, saved with save_pretrained; it stands in for
  stabilityai/stable-diffusion-2-1 in synthesis, in the FairFace score model and as StableBias' text encoder.
- `write_word2vec(path, words)`: a word2vec binary file (GoogleNews-vectors-negative300.bin's format, 300-d) with
  random vectors for `words`; `paper_words()` lists every word the paper path looks up (conditioning words,
  definitional pairs, WEAT sets, the StableBias professions' words).
- `fairface_rows(...)`, `write_fairface_official(root, rows)`, `write_fairface_hf(root, rows)`: the same labelled JPEG
  faces in FairFace's official CSV layout and in the Hugging Face Parquet layout.
- `write_stablebias_images(dir)`: a StableBias image dataset (Parquet: profession, model, image); `build_clip(dir)`:
  a tiny CLIPModel + CLIPProcessor saved with save_pretrained (stands in for openai/clip-vit-base-patch32).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from tiny_models import build_tiny_sd_pipeline, tiny_clip

WORD2VEC_DIM = 300
# Words besides the needed ones, so the embed stage's reference-word distortion has a vocabulary to draw from.
FILLER_WORDS = (
    "the", "of", "and", "house", "river", "table", "window", "garden", "city", "music", "paper", "stone", "light",
    "water", "green", "summer", "winter", "bread", "horse", "train", "letter", "chair", "cloud", "forest", "mountain",
)  # fmt: skip


# ---------------------------------------------------------------- SD 2.1
def build_sd21_pipeline(directory: str | Path, sample_size: int = 32) -> Path:
    """An SD-2.1-shaped pipeline (v-prediction, CLIP tokenizer + text encoder) saved to `directory`; returns it."""
    from diffusers import DDIMScheduler

    def sd21_scheduler(**kwargs):  # stabilityai/stable-diffusion-2-1's scheduler_config.json, v-prediction
        return DDIMScheduler(clip_sample=False, set_alpha_to_one=False, **kwargs)

    directory = Path(directory)
    build_tiny_sd_pipeline(directory, "v_prediction", scheduler_cls=sd21_scheduler, sample_size=sample_size)
    return directory


# ---------------------------------------------------------------- word2vec
def paper_words(prompts: dict) -> list[str]:
    """Every word the paper path looks up in the word vectors, sorted: the prompts' conditioning words, the
    definitional pairs and WEAT sets of the embed stage, and the words of the 150 StableBias professions."""
    from biasdiff.vectors.wordlists import DEFINITIONAL_PAIRS, WEAT_TESTS
    from biasdiff.stablebias.resources import load_professions
    from biasdiff.stablebias.wordbias import profession_words

    words = {w for spec in prompts.values() for w in spec["words"]}
    words |= {w for pair in DEFINITIONAL_PAIRS for w in pair}
    words |= {w for test in WEAT_TESTS.values() for group in test for w in group}
    words |= {w for prof in load_professions()["profession"] for w in profession_words(prof)}
    return sorted(words)


def write_word2vec(path: str | Path, words: Iterable[str], dim: int = WORD2VEC_DIM, seed: int = 0) -> Path:
    """A word2vec binary vectors file holding `words` (then FILLER_WORDS) with seeded random vectors."""
    from gensim.models import KeyedVectors

    vocab = list(dict.fromkeys([*FILLER_WORDS, *words]))
    kv = KeyedVectors(vector_size=dim)
    kv.add_vectors(vocab, np.random.default_rng(seed).standard_normal((len(vocab), dim)).astype(np.float32))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kv.save_word2vec_format(str(path), binary=True)
    return path


# ---------------------------------------------------------------- FairFace
def _face_jpeg(gender: str, race_index: int, size: int, seed: int) -> bytes:
    """A crude face: skin tone by race, hair length by gender, seeded jitter; JPEG bytes (FairFace ships JPEGs)."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), tuple(int(c) for c in rng.integers(60, 200, 3)))
    draw = ImageDraw.Draw(img)
    tone = 230 - 22 * race_index
    skin = (tone, int(tone * 0.8), int(tone * 0.65))
    hair_bottom = size * (0.85 if gender == "Female" else 0.4)
    draw.rectangle([size * 0.2, size * 0.1, size * 0.8, hair_bottom], fill=(30, 20, 10))
    draw.ellipse([size * 0.28, size * 0.2, size * 0.72, size * 0.8], fill=skin)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def fairface_rows(n: int, split: str, size: int = 48, seed: int = 0) -> list[dict]:
    """`n` labelled FairFace rows of one split: file ("train/1.jpg", ...), age, gender, race, service_test and the
    JPEG bytes. Genders alternate and races cycle, so every (gender, race) stratum recurs."""
    from biasdiff.fairface.labels import AGES, HF_ORDER

    races = HF_ORDER["race"]
    rows = []
    for i in range(n):
        gender = ("Male", "Female")[i % 2]
        race = races[(i // 2) % len(races)]
        rows.append(
            {"file": f"{split}/{i + 1}.jpg", "age": AGES[(3 + i) % len(AGES)], "gender": gender, "race": race,
             "service_test": bool(i % 3 == 0), "jpeg": _face_jpeg(gender, races.index(race), size, seed * 100003 + i)}
        )  # fmt: skip
    return rows


def write_fairface_official(root: str | Path, splits: dict[str, Sequence[dict]]) -> Path:
    """The official layout: fairface_label_{split}.csv (file, age, gender, race, service_test) + {split}/N.jpg."""
    import pandas as pd

    root = Path(root)
    for split, rows in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for row in rows:
            (root / row["file"]).write_bytes(row["jpeg"])
        frame = pd.DataFrame([{k: row[k] for k in ("file", "age", "gender", "race", "service_test")} for row in rows])
        frame.to_csv(root / f"fairface_label_{split}.csv", index=False)
    return root


def fairface_hf_schema():
    """The Arrow schema of HuggingFaceM4/FairFace's Parquet shards: image {bytes, path}, class indices, service_test."""
    import pyarrow as pa

    return pa.schema(
        [
            ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            ("age", pa.int64()),
            ("gender", pa.int64()),
            ("race", pa.int64()),
            ("service_test", pa.bool_()),
        ]
    )


def write_fairface_hf(
    root: str | Path, splits: dict[str, Sequence[dict]], padding: str = "0.25", n_files: int = 2
) -> Path:
    """The Hugging Face Parquet layout (HuggingFaceM4/FairFace): <root>/<padding>/{train,validation}-K-of-N.parquet
    with image {bytes, path}, age/gender/race as class indices (labels.HF_ORDER) and service_test; the rows in the
    official CSV's order, split over `n_files` files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from biasdiff.fairface.labels import HF_ORDER

    schema = fairface_hf_schema()
    base = Path(root) / padding
    base.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        name = {"train": "train", "val": "validation"}[split]
        records = [
            {"image": {"bytes": row["jpeg"], "path": None}, "age": HF_ORDER["age"].index(row["age"]),
             "gender": HF_ORDER["gender"].index(row["gender"]), "race": HF_ORDER["race"].index(row["race"]),
             "service_test": row["service_test"]}
            for row in rows
        ]  # fmt: skip
        for k, chunk in enumerate(np.array_split(np.arange(len(records)), n_files)):
            table = pa.Table.from_pylist([records[i] for i in chunk], schema=schema)
            pq.write_table(table, base / f"{name}-{k:05d}-of-{n_files:05d}.parquet", row_group_size=4)
    return Path(root)


# ---------------------------------------------------------------- StableBias
def write_stablebias_images(
    directory: str | Path, professions: Sequence[str] = ("nurse", "CEO", "truck_driver", "librarian"),
    models: Sequence[str] = ("SD_14", "SD_2"), per_profession: int = 2, size: int = 32,
) -> Path:
    """A StableBias image dataset in the Hugging Face Parquet layout of stable-bias/professions-v2 (columns
    profession, model, image {bytes, path}, seed), one file per generating model."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("profession", pa.string()), ("model", pa.string()),
                        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("seed", pa.int64())])
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for m, model in enumerate(models):
        records = []
        for p, prof in enumerate(professions):
            for i in range(per_profession):
                rng = np.random.default_rng([m, p, i])
                arr = (rng.random((size, size, 3)) * 255).astype(np.uint8)
                buf = io.BytesIO()
                Image.fromarray(arr).save(buf, format="PNG")
                records.append({"profession": prof, "model": model, "image": {"bytes": buf.getvalue(), "path": None},
                                "seed": i})
        name = f"train-{m:05d}-of-{len(models):05d}.parquet"
        pq.write_table(pa.Table.from_pylist(records, schema=schema), directory / name)
    return directory


def build_clip(directory: str | Path, image_size: int = 32) -> Path:
    """A tiny CLIPModel and its CLIPProcessor saved with save_pretrained (loadable by CLIPModel/CLIPProcessor
    .from_pretrained, like openai/clip-vit-base-patch32)."""
    directory = Path(directory)
    model, processor = tiny_clip(image_size)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
