"""The synthesize stage: one shard of one prompt, written atomically as Parquet."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import pandas as pd
from tqdm import tqdm

from biasdiff.io import write_parquet
from biasdiff.seeds import derive_seed, rng_for
from biasdiff.synth.procedural import RenderSettings, encode_png, render_person
from biasdiff.artifacts.shards import SHARD_COLUMNS

log = logging.getLogger(__name__)

PROCEDURAL_ID = "biasdiff-procedural-v1"


def image_seed(seed: int, prompt: str, index: int) -> int:
    """The seed of image `index` of `prompt` (unique per image; the same for every backend)."""
    return derive_seed(seed, prompt, index)


def run_synthesis(outputs: Mapping[str, str], settings: Mapping[str, Any]) -> pd.DataFrame:
    """Stage entry point (rule synthesize_shard): render images [start, stop) of `settings["prompt"]` and write
    them to `outputs["shard"]`.

    settings: prompt, text, attributes {gender, occupation, ...}, start, stop, seed, backend, store_size, settings (the backend's
    section). Returns the shard as a DataFrame with SHARD_COLUMNS.
    """
    params, out_path = settings, outputs["shard"]
    prompt, start, stop = params["prompt"], int(params["start"]), int(params["stop"])
    size = int(params["store_size"])
    attrs = params["attributes"]
    indices = list(range(start, stop))
    seeds = [image_seed(params["seed"], prompt, i) for i in indices]
    backend = params["backend"]
    backend_settings = dict(params["settings"])
    log.info("%s: images %d..%d with backend %s at %d px", prompt, start, stop - 1, backend, size)

    if backend == "procedural":
        render = RenderSettings(size=size, **backend_settings)
        images = (render_person(rng_for(s), attrs["gender"], attrs["occupation"], render) for s in seeds)
        model_id, revision = PROCEDURAL_ID, None
    elif backend == "diffusers":
        from biasdiff.synth.diffusers_backend import DiffusersSettings, generate, load_pipeline

        dsettings = DiffusersSettings(**backend_settings)
        pipe = load_pipeline(dsettings)
        images = generate(pipe, params["text"], seeds, dsettings, size)
        model_id, revision = dsettings.model, dsettings.revision
    else:
        raise ValueError(f"unknown synthesis backend {backend!r}; valid: ['procedural', 'diffusers']")

    rows = []
    for index, seed, image in tqdm(zip(indices, seeds, images), total=len(indices), desc=f"{prompt}", mininterval=2.0):
        rows.append(
            {
                "png": encode_png(image),
                "prompt": prompt,
                "prompt_text": params["text"],
                "index": index,
                "seed": seed,
                "backend": backend,
                "model_id": model_id,
                "model_revision": revision,
                "width": image.shape[1],
                "height": image.shape[0],
                "gender": attrs["gender"],
                "occupation": attrs["occupation"],
            }
        )
    df = pd.DataFrame(rows, columns=SHARD_COLUMNS)
    df["model_revision"] = df["model_revision"].astype("string")
    write_parquet(df, out_path)
    log.info("wrote %d images to %s", len(df), out_path)
    return df
