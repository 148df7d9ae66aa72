"""Attribute classifier: a small CNN (plain torch) with a gender head and an occupation head, trained on the
labeled synthetic images, early-stopped on the manifest's val split, scored on held-out images.

Splits (all from the manifest, deterministic): `train` = the manifest's train split; the manifest's val split is
cut by a seeded hash into `val` (early stopping) and `test` (the reported held-out accuracy and confusion matrices),
so the reported numbers are never those the stopping rule chose.

Images are uint8 (N, H, W, 3); the network sees float (N, 3, H, W) in [-1, 1]. Any square size works (global
average pooling before the heads).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from biasdiff.errors import DataError
from biasdiff.io import atomic_path
from biasdiff.seeds import derive_seed, unit_uniform

log = logging.getLogger(__name__)

# Early stopping counts an epoch as progress only if it lowers the best val loss by at least this fraction AND by at
# least this many nats: near zero loss the loss keeps halving (a relative gain every epoch) while the predictions no
# longer change, which would otherwise run every configured epoch on a classifier that is already perfect.
MIN_REL_IMPROVEMENT = 0.05
MIN_ABS_IMPROVEMENT = 1e-3

HEADS = ("gender", "occupation")


def made_progress(val_loss: float, best_loss: float) -> bool:
    """Whether `val_loss` beats the best so far by enough to reset early stopping's patience (see MIN_*_IMPROVEMENT)."""
    if not math.isfinite(best_loss):
        return math.isfinite(val_loss)
    return val_loss < best_loss - max(best_loss * MIN_REL_IMPROVEMENT, MIN_ABS_IMPROVEMENT)


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 when they divide the width, else the largest divisor below 8 (train = eval behaviour,
    no running statistics to go stale on small data)."""
    return max(g for g in range(1, 9) if channels % g == 0)


class AttributeCNN(nn.Module):
    """Three conv stages (conv-GroupNorm-ReLU ×2, then 2× downsampling), global average pool, one linear head per attribute.

    forward(x (B, 3, H, W) in [-1, 1]) -> {"gender": logits (B, n_gender), "occupation": logits (B, n_occupation)}.
    """

    def __init__(self, n_classes: Mapping[str, int], width: int = 32, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for mult in (1, 2, 4):
            c_out = width * mult
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.GroupNorm(_groups(c_out), c_out), nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.GroupNorm(_groups(c_out), c_out), nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.heads = nn.ModuleDict({name: nn.Linear(c_in, int(k)) for name, k in n_classes.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(x)
        return {name: head(h) for name, head in self.heads.items()}


@dataclass
class AttributeClassifier:
    """A trained AttributeCNN with its label vocabularies (`labels[head][k]` = class k of that head)."""

    model: AttributeCNN
    labels: dict[str, list[str]]
    width: int

    @torch.inference_mode()
    def predict_proba(self, images: np.ndarray, batch_size: int = 256, device: str | torch.device = "cpu") -> dict:
        """Class probabilities per head: {head: float (N, n_classes)} for uint8 images (N, H, W, 3)."""
        model = self.model.to(device).eval()
        out: dict[str, list[np.ndarray]] = {h: [] for h in self.labels}
        for start in range(0, len(images), batch_size):
            x = to_tensor(images[start : start + batch_size]).to(device)
            for head, logits in model(x).items():
                out[head].append(logits.float().softmax(-1).cpu().numpy())
        return {h: np.concatenate(v) if v else np.zeros((0, len(self.labels[h]))) for h, v in out.items()}

    def predict(self, images: np.ndarray, batch_size: int = 256, device: str | torch.device = "cpu") -> dict:
        """Predicted label strings per head: {head: object array (N,)}."""
        proba = self.predict_proba(images, batch_size, device)
        return {h: np.asarray(self.labels[h], dtype=object)[p.argmax(1)] for h, p in proba.items()}

    def save(self, directory: str | os.PathLike) -> None:
        """`model.safetensors` + `classifier.json` (labels, width), each written atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file(state, str(tmp))
        with atomic_path(directory / "classifier.json") as tmp:
            tmp.write_text(json.dumps({"labels": self.labels, "width": self.width}, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "AttributeClassifier":
        directory = Path(directory)
        if not (directory / "model.safetensors").is_file() or not (directory / "classifier.json").is_file():
            raise DataError(
                f"classifier directory {directory} lacks model.safetensors/classifier.json; "
                "it is made by the rule train_attribute_classifier"
            )
        meta = json.loads((directory / "classifier.json").read_text())
        model = AttributeCNN({h: len(v) for h, v in meta["labels"].items()}, width=int(meta["width"]))
        model.load_state_dict(load_file(str(directory / "model.safetensors")))
        return cls(model.eval(), {h: list(v) for h, v in meta["labels"].items()}, int(meta["width"]))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise DataError(f"classifier input must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def classifier_splits(split: Sequence[str], keys: Sequence[Any], seed: int, test_fraction: float) -> np.ndarray:
    """Role of every image: "train" (manifest train), "val" or "test" (a seeded hash cut of the manifest val split).

    `keys` identify images stably (e.g. "prompt/index"), so the cut does not move when counts grow.
    """
    roles = np.where(np.asarray(split) == "train", "train", "val").astype(object)
    for i, key in enumerate(keys):
        if roles[i] == "val" and unit_uniform(seed, "classifier-test", key) < test_fraction:
            roles[i] = "test"
    for role in ("train", "val", "test"):
        if not np.any(roles == role):
            raise DataError(
                f"the attribute classifier's {role} set is empty ({int(np.sum(np.asarray(split) == 'val'))} val "
                "images in the manifest); raise manifest.val_fraction or the prompt counts, or adjust "
                "audit.classifier.test_fraction"
            )
    return roles


def _augment(x: torch.Tensor, gen: torch.Generator, noise_std: float) -> torch.Tensor:
    """Random horizontal flip and per-image Gaussian pixel noise (std uniform in [0, noise_std]); x in [-1, 1]."""
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if noise_std > 0:
        std = torch.rand(x.shape[0], 1, 1, 1, generator=gen) * noise_std
        x = x + std * torch.randn(x.shape, generator=gen)
    return x


def _encode(values: Sequence[str], labels: list[str]) -> torch.Tensor:
    index = {v: i for i, v in enumerate(labels)}
    return torch.tensor([index[v] for v in values], dtype=torch.long)


@torch.inference_mode()
def _evaluate(model: AttributeCNN, x: torch.Tensor, y: dict[str, torch.Tensor], batch_size: int) -> dict:
    model.eval()
    preds = {h: [] for h in y}
    loss = 0.0
    for start in range(0, len(x), batch_size):
        out = model(x[start : start + batch_size])
        for h in y:
            loss += F.cross_entropy(out[h], y[h][start : start + batch_size], reduction="sum").item()
            preds[h].append(out[h].argmax(1))
    preds = {h: torch.cat(p) for h, p in preds.items()}
    return {"loss": loss / len(x), "pred": preds, "accuracy": {h: float((preds[h] == y[h]).float().mean()) for h in y}}


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n: int) -> list[list[int]]:
    """Counts (n, n): rows = true class, columns = predicted class."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (np.asarray(true), np.asarray(pred)), 1)
    return m.tolist()


def train_attribute_classifier(
    images: np.ndarray,
    attributes: Mapping[str, Sequence[str]],
    roles: Sequence[str],
    settings: Mapping[str, Any],
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[AttributeClassifier, dict]:
    """Train on role "train", early-stop on "val" (summed cross-entropy of both heads), score "test".

    images: uint8 (N, H, W, 3); attributes: {"gender": (N,) labels, "occupation": (N,) labels}; roles: (N,)
    "train"/"val"/"test". settings: epochs, batch_size, lr, weight_decay, patience, seed, width, noise_std.
    Returns the classifier (best-val weights) and a metrics dict (accuracies, confusion matrices, history).
    """
    roles = np.asarray(roles)
    seed = derive_seed(settings["seed"], "attribute-classifier")
    torch.manual_seed(seed)
    labels = {h: sorted({str(v) for v in attributes[h]}) for h in HEADS}
    x = to_tensor(images)
    y = {h: _encode([str(v) for v in attributes[h]], labels[h]) for h in HEADS}
    idx = {r: torch.from_numpy(np.flatnonzero(roles == r)) for r in ("train", "val", "test")}
    xs = {r: x[i] for r, i in idx.items()}
    ys = {r: {h: y[h][i] for h in HEADS} for r, i in idx.items()}

    width = int(settings["width"])
    model = AttributeCNN({h: len(labels[h]) for h in HEADS}, width=width).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    gen = torch.Generator().manual_seed(seed)
    bs = int(settings["batch_size"])
    best = (math.inf, -1, copy.deepcopy(model.state_dict()))  # (lowest val loss, its epoch, its weights)
    progress_epoch = -1  # last epoch that `made_progress`; patience counts from it
    history = []
    n_train = len(idx["train"])
    for epoch in range(int(settings["epochs"])):
        model.train()
        order = torch.randperm(n_train, generator=gen)
        total = 0.0
        for start in tqdm(range(0, n_train, bs), desc=f"classifier epoch {epoch}", disable=not progress, leave=False):
            batch = order[start : start + bs]
            xb = _augment(xs["train"][batch], gen, float(settings["noise_std"])).to(device)
            out = model(xb)
            loss = sum(F.cross_entropy(out[h], ys["train"][h][batch].to(device)) for h in HEADS)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        val = _evaluate(model, xs["val"].to(device), {h: t.to(device) for h, t in ys["val"].items()}, bs)
        history.append({"epoch": epoch, "train_loss": total / n_train, "val_loss": val["loss"],
                        **{f"val_{h}_accuracy": a for h, a in val["accuracy"].items()}})
        log.info("classifier epoch %d: train loss %.4f, val loss %.4f, val accuracy %s", epoch, total / n_train,
                 val["loss"], {h: round(a, 4) for h, a in val["accuracy"].items()})
        if made_progress(val["loss"], best[0]):
            progress_epoch = epoch
        if val["loss"] < best[0]:
            best = (val["loss"], epoch, copy.deepcopy(model.state_dict()))
        if epoch - progress_epoch >= int(settings["patience"]):
            log.info("early stop at epoch %d (best val loss %.4f at epoch %d)", epoch, best[0], best[1])
            break
    model.load_state_dict(best[2])
    model.eval()

    metrics: dict[str, Any] = {
        "n": {r: int(len(i)) for r, i in idx.items()},
        "best_epoch": best[1],
        "epochs_run": len(history),
        "history": history,
        "settings": dict(settings),
    }
    for role in ("val", "test"):
        ev = _evaluate(model, xs[role].to(device), {h: t.to(device) for h, t in ys[role].items()}, bs)
        for h in HEADS:
            entry = metrics.setdefault(h, {"labels": labels[h]})
            entry[f"{role}_accuracy"] = ev["accuracy"][h]
            entry[f"{role}_confusion"] = confusion_matrix(ys[role][h].numpy(), ev["pred"][h].cpu().numpy(),
                                                          len(labels[h]))
    return AttributeClassifier(model.cpu(), labels, width), metrics


def check_gender_accuracy(metrics: Mapping[str, Any], floor: float) -> None:
    """Raise DataError (one line, with the numbers) if the held-out gender accuracy is below `floor`."""
    acc = float(metrics["gender"]["test_accuracy"])
    if acc < floor:
        raise DataError(
            f"attribute classifier held-out gender accuracy {acc:.3f} (n={metrics['n']['test']}) is below "
            f"audit.gender_accuracy_floor {floor:.3f}; no audit reported (train longer via audit.classifier.epochs, "
            "use more images, or lower the floor)"
        )


def run_train_classifier(
    *,
    manifest: str | os.PathLike,
    images: str | os.PathLike,
    out_dir: str | os.PathLike,
    out_metrics: str | os.PathLike,
    settings: Mapping[str, Any],
) -> dict:
    """Stage entry point: train on the manifest's labeled images, write the classifier and its metrics JSON.

    The floor on held-out gender accuracy is not checked here (changing it must not retrain): the audits that use
    the classifier check it and refuse to report, and these metrics are the evidence they cite.
    """
    from biasdiff.devices import resolve_device
    from biasdiff.io import write_json
    from biasdiff.manifest import load_images

    table, array = load_images(manifest, images)
    table = table.sort_values("array_index")
    keys = [f"{p}/{i}" for p, i in zip(table["prompt"], table["index"])]
    roles = classifier_splits(table["split"].to_numpy(), keys, settings["seed"], settings["test_fraction"])
    pixels = np.asarray(array[table["array_index"].to_numpy()])
    attrs = {h: table[h].astype(str).to_numpy() for h in HEADS}
    device = resolve_device(settings["device"])
    classifier, metrics = train_attribute_classifier(pixels, attrs, roles, settings, device=device)
    log.info(
        "held-out accuracy: gender %.4f, occupation %.4f (n=%d)",
        metrics["gender"]["test_accuracy"], metrics["occupation"]["test_accuracy"], metrics["n"]["test"],
    )
    classifier.save(out_dir)
    write_json(metrics, out_metrics)
    return metrics
