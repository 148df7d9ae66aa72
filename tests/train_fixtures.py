"""Tiny in-memory training inputs for the train tests: a manifest, packed images and a conditioning table."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from biasdiff.config import section_defaults
from biasdiff.manifest.build import write_manifest

PROMPT_WORDS = {
    "male_nurse": ["man", "nurse", "person"],
    "female_nurse": ["woman", "nurse", "person"],
    "man": ["man", "person", "man"],
}
COLOURS = {"male_nurse": (40, 80, 200), "female_nurse": (200, 60, 60), "man": (120, 120, 120)}


def train_defaults() -> dict:
    """The `train:` section with every schema default filled in."""
    return section_defaults("train")


def tiny_train_cfg(**overrides) -> dict:
    cfg = train_defaults()
    cfg.update({
        "unet": {"block_out_channels": [8, 16], "layers_per_block": 1, "attention_resolutions": [4],
                 "attention_head_dim": 8, "norm_num_groups": 4},
        "batch_size": 8, "steps": 6, "device": "cpu", "val_every": 3, "checkpoint_every": 3,
        "grid": {"every": 0, "n": 2, "steps": 2, "guidance_scale": 3.0},
        "wandb": {"mode": "disabled", "project": "test"}, "progress_interval_s": 0, "threads": 1,
    })
    for key, value in overrides.items():
        cfg[key] = copy.deepcopy(value)
    return cfg


def write_inputs(tmp_path, n_per_prompt: int = 6, size: int = 8, dim: int = 8, words_table=None):
    """Write manifest.parquet, images.npy, conditioning.parquet under tmp_path; return their paths."""
    rng = np.random.default_rng(0)
    rows, images = [], []
    for prompt, words in PROMPT_WORDS.items():
        for i in range(n_per_prompt):
            img = np.empty((size, size, 3), np.uint8)
            img[:] = COLOURS[prompt]
            img[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 20  # a dark "head"
            img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
            rows.append({"array_index": len(images), "prompt": prompt, "index": i, "words": words,
                         "split": "val" if i == 0 else "train"})
            images.append(img)
    manifest = tmp_path / "images.parquet"
    array = tmp_path / "images.npy"
    write_manifest(pd.DataFrame(rows), np.stack(images), manifest, array)
    vocab = words_table or sorted({w for ws in PROMPT_WORDS.values() for w in ws})
    vectors = rng.normal(0, 1, (len(vocab), dim)).astype(np.float32)
    cond = tmp_path / "conditioning.parquet"
    pd.DataFrame({"word": vocab, "vector": list(vectors), "source": "test", "seed": 0, "dim": dim}).to_parquet(cond)
    return manifest, array, cond
