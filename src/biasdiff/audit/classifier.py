"""Attribute classifier: a small CNN (plain torch) with a gender head and an occupation head, trained on the
labeled synthetic images, early-stopped on the manifest's val split, scored on held-out images.

Splits (all from the manifest, deterministic): `train` = the manifest's train split; the manifest's val split is
cut by a seeded hash into `val` (early stopping) and `test` (the reported held-out accuracy and confusion matrices),
so the reported numbers are never those the stopping rule chose.

The classifier is an ensemble of `members` CNNs, each with its own seed and its own bootstrap share
(`bag_fraction`) of the train split; it labels by the members' mean probability. Every member is perfect on
held-out procedural images, yet the diffusion model's samples include half-formed people (hair between short and
long, faint figures) that single networks label by whatever they happened to key on: two networks differing only
in seed disagreed on 9-11% of the default model's samples and moved a word's P(female) by up to 0.19. The ensemble
averages that instrument noise down, and the audit reports what is left (members' range, disputed share).

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

from biasdiff.devices import autocast, autocast_dtype, precision_label
from biasdiff.errors import DataError
from biasdiff.io import atomic_path
from biasdiff.model.pixels import to_unit
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
    """An ensemble of trained AttributeCNNs (`models`, one per member) with the label vocabularies
    (`labels[head][k]` = class k of that head). Predictions use the members' mean class probabilities."""

    models: list[AttributeCNN]
    labels: dict[str, list[str]]
    width: int
    precision: str = "fp32"  # what it was trained in ("bf16": its forward passes run under bf16 autocast)

    def amp(self, device: str | torch.device) -> torch.dtype | None:
        """The autocast dtype of inference: bf16 for a classifier trained in bf16 where the device has bf16 units,
        else None (fp32)."""
        return autocast_dtype("auto", torch.device(device)) if self.precision == "bf16" else None

    @torch.inference_mode()
    def member_proba(self, images: np.ndarray, batch_size: int = 256, device: str | torch.device = "cpu") -> dict:
        """Class probabilities per head and member: {head: float (n_members, N, n_classes)} for uint8 (N, H, W, 3)."""
        models = [model.to(device).eval() for model in self.models]
        amp = self.amp(device)
        out: dict[str, list[list[np.ndarray]]] = {h: [[] for _ in models] for h in self.labels}
        for start in range(0, len(images), batch_size):
            x = to_tensor(images[start : start + batch_size]).to(device)
            for m, model in enumerate(models):
                with autocast(torch.device(device), amp):
                    logits_of = model(x)
                for head, logits in logits_of.items():
                    out[head][m].append(logits.float().softmax(-1).cpu().numpy())
        return {
            h: np.stack([np.concatenate(v) if v else np.zeros((0, len(self.labels[h]))) for v in per_member])
            for h, per_member in out.items()
        }

    def predict_proba(self, images: np.ndarray, batch_size: int = 256, device: str | torch.device = "cpu") -> dict:
        """The members' mean class probabilities per head: {head: float (N, n_classes)}."""
        return {h: p.mean(0) for h, p in self.member_proba(images, batch_size, device).items()}

    def predict(self, images: np.ndarray, batch_size: int = 256, device: str | torch.device = "cpu") -> dict:
        """Predicted label strings per head (argmax of the mean probabilities): {head: object array (N,)}."""
        return self.labels_of(self.predict_proba(images, batch_size, device))

    def labels_of(self, proba: Mapping[str, np.ndarray]) -> dict:
        """Label strings from probabilities {head: (..., n_classes)} -> {head: object array (...)}."""
        return {h: np.asarray(self.labels[h], dtype=object)[p.argmax(-1)] for h, p in proba.items()}

    def save(self, directory: str | os.PathLike) -> None:
        """`model.safetensors` (member k's tensors under "member{k}.") + `classifier.json` (labels, width, members),
        each written atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            f"member{m}.{k}": v.detach().cpu().contiguous()
            for m, model in enumerate(self.models)
            for k, v in model.state_dict().items()
        }
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file(state, str(tmp))
        meta = {"labels": self.labels, "width": self.width, "members": len(self.models), "precision": self.precision}
        with atomic_path(directory / "classifier.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "AttributeClassifier":
        directory = Path(directory)
        if not (directory / "model.safetensors").is_file() or not (directory / "classifier.json").is_file():
            raise DataError(
                f"classifier directory {directory} lacks model.safetensors/classifier.json; "
                "it is made by the rule train_attribute_classifier"
            )
        meta = json.loads((directory / "classifier.json").read_text())
        if "members" not in meta:
            raise DataError(
                f"{directory / 'classifier.json'} has no 'members' (written by an older version); "
                "rerun the rule train_attribute_classifier"
            )
        state = load_file(str(directory / "model.safetensors"))
        models = []
        for m in range(int(meta["members"])):
            model = AttributeCNN({h: len(v) for h, v in meta["labels"].items()}, width=int(meta["width"]))
            prefix = f"member{m}."
            model.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
            models.append(model.eval())
        return cls(models, {h: list(v) for h, v in meta["labels"].items()}, int(meta["width"]),
                   str(meta.get("precision", "fp32")))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    return to_unit(np.asarray(images))


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
def _evaluate(models: Sequence[AttributeCNN], x: torch.Tensor, y: dict[str, torch.Tensor], batch_size: int,
              amp: torch.dtype | None = None) -> dict:
    """Loss (mean summed-over-heads NLL of the members' mean probabilities), predictions and accuracy per head.
    `amp`: autocast dtype of the forward passes (probabilities and loss in fp32)."""
    for model in models:
        model.eval()
    preds = {h: [] for h in y}
    loss = 0.0
    for start in range(0, len(x), batch_size):
        with autocast(x.device, amp):
            outs = [model(x[start : start + batch_size]) for model in models]
        for h in y:
            proba = torch.stack([o[h].float().softmax(-1) for o in outs]).mean(0)
            loss += F.nll_loss(proba.clamp_min(1e-12).log(), y[h][start : start + batch_size], reduction="sum").item()
            preds[h].append(proba.argmax(1))
    preds = {h: torch.cat(p) for h, p in preds.items()}
    return {"loss": loss / len(x), "pred": preds, "accuracy": {h: float((preds[h] == y[h]).float().mean()) for h in y}}


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n: int) -> list[list[int]]:
    """Counts (n, n) of class indices 0..n-1: rows = true class, columns = predicted class (pandas' crosstab, as the
    FairFace audit counts its confusions)."""
    import pandas as pd

    classes = pd.Categorical(np.asarray(true), categories=range(n)), pd.Categorical(np.asarray(pred), categories=range(n))
    return pd.crosstab(*classes, dropna=False).reindex(index=range(n), columns=range(n), fill_value=0).to_numpy().tolist()


def bootstrap_indices(n: int, fraction: float, seed: int) -> torch.Tensor:
    """A member's share of the train split: `fraction` of its n images drawn without replacement (seeded), sorted;
    fraction 1 = all of them."""
    if fraction >= 1:
        return torch.arange(n)
    k = max(1, int(round(n * fraction)))
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


def _fit_member(
    x: Mapping[str, torch.Tensor],
    y: Mapping[str, Mapping[str, torch.Tensor]],
    n_classes: Mapping[str, int],
    settings: Mapping[str, Any],
    member: int,
    device: str | torch.device,
    progress: bool,
    amp: torch.dtype | None = None,
) -> tuple[AttributeCNN, list[dict], int]:
    """Train member `member` on its bootstrap share of x["train"], early-stopped on x["val"].

    Returns the best-val-loss weights (in eval mode), the per-epoch history and the best epoch."""
    seed = derive_seed(settings["seed"], "attribute-classifier", member)
    torch.manual_seed(seed)
    rows = bootstrap_indices(len(x["train"]), float(settings.get("bag_fraction", 1.0)), seed)
    x_train, y_train = x["train"][rows], {h: t[rows] for h, t in y["train"].items()}
    x_val, y_val = x["val"].to(device), {h: t.to(device) for h, t in y["val"].items()}
    model = AttributeCNN(n_classes, width=int(settings["width"])).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    gen = torch.Generator().manual_seed(seed)
    bs = int(settings["batch_size"])
    best = (math.inf, -1, copy.deepcopy(model.state_dict()))  # (lowest val loss, its epoch, its weights)
    progress_epoch = -1  # last epoch that `made_progress`; patience counts from it
    history = []
    n_train = len(rows)
    for epoch in range(int(settings["epochs"])):
        model.train()
        order = torch.randperm(n_train, generator=gen)
        total = 0.0
        desc = f"classifier member {member} epoch {epoch}"
        for start in tqdm(range(0, n_train, bs), desc=desc, disable=not progress, leave=False):
            batch = order[start : start + bs]
            xb = _augment(x_train[batch], gen, float(settings["noise_std"])).to(device)
            with autocast(xb.device, amp):
                out = model(xb)
            loss = sum(F.cross_entropy(out[h].float(), y_train[h][batch].to(device)) for h in HEADS)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        val = _evaluate([model], x_val, y_val, bs, amp)
        history.append({"member": member, "epoch": epoch, "train_loss": total / n_train, "val_loss": val["loss"],
                        **{f"val_{h}_accuracy": a for h, a in val["accuracy"].items()}})
        log.info("classifier member %d epoch %d: train loss %.4f, val loss %.4f, val accuracy %s", member, epoch,
                 total / n_train, val["loss"], {h: round(a, 4) for h, a in val["accuracy"].items()})
        if made_progress(val["loss"], best[0]):
            progress_epoch = epoch
        if val["loss"] < best[0]:
            best = (val["loss"], epoch, copy.deepcopy(model.state_dict()))
        if epoch - progress_epoch >= int(settings["patience"]):
            log.info("member %d: early stop at epoch %d (best val loss %.4f at epoch %d)", member, epoch, best[0],
                     best[1])
            break
    model.load_state_dict(best[2])
    return model.cpu().eval(), history, best[1]


def train_attribute_classifier(
    images: np.ndarray,
    attributes: Mapping[str, Sequence[str]],
    roles: Sequence[str],
    settings: Mapping[str, Any],
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[AttributeClassifier, dict]:
    """Train `members` networks on role "train" (each on its `bag_fraction` share), early-stop each on "val"
    (summed cross-entropy of both heads), score the ensemble and every member on "test".

    images: uint8 (N, H, W, 3); attributes: {"gender": (N,) labels, "occupation": (N,) labels}; roles: (N,)
    "train"/"val"/"test". settings: epochs, batch_size, lr, weight_decay, patience, seed, width, noise_std, and
    members / bag_fraction (default 1 / 1.0: a single network on all of the train split).
    Returns the classifier (every member at its best-val weights) and a metrics dict (ensemble accuracies and
    confusion matrices, each member's test accuracy, history).
    """
    roles = np.asarray(roles)
    labels = {h: sorted({str(v) for v in attributes[h]}) for h in HEADS}
    x = to_tensor(images)
    y = {h: _encode([str(v) for v in attributes[h]], labels[h]) for h in HEADS}
    idx = {r: torch.from_numpy(np.flatnonzero(roles == r)) for r in ("train", "val", "test")}
    xs = {r: x[i] for r, i in idx.items()}
    ys = {r: {h: y[h][i] for h in HEADS} for r, i in idx.items()}
    n_classes = {h: len(labels[h]) for h in HEADS}
    n_members = int(settings.get("members", 1))
    amp = autocast_dtype(settings.get("precision", "fp32"), torch.device(device), "audit.classifier.precision")
    models, history, best_epochs = [], [], []
    for member in range(n_members):
        model, member_history, best_epoch = _fit_member(xs, ys, n_classes, settings, member, device, progress, amp)
        models.append(model)
        history += member_history
        best_epochs.append(best_epoch)

    metrics: dict[str, Any] = {
        "n": {r: int(len(i)) for r, i in idx.items()},
        "members": n_members,
        "best_epoch": best_epochs,
        "epochs_run": [sum(1 for r in history if r["member"] == m) for m in range(n_members)],
        "history": history,
        "settings": dict(settings),
        "precision": precision_label(amp),
    }
    bs = int(settings["batch_size"])
    for role in ("val", "test"):
        ev = _evaluate(models, xs[role], ys[role], bs, amp)
        for h in HEADS:
            entry = metrics.setdefault(h, {"labels": labels[h]})
            entry[f"{role}_accuracy"] = ev["accuracy"][h]
            entry[f"{role}_confusion"] = confusion_matrix(ys[role][h].numpy(), ev["pred"][h].numpy(), len(labels[h]))
    for h in HEADS:
        metrics[h]["member_test_accuracy"] = [_evaluate([m], xs["test"], ys["test"], bs, amp)["accuracy"][h]
                                              for m in models]
    return AttributeClassifier(models, labels, int(settings["width"]), precision_label(amp)), metrics


def check_gender_accuracy(metrics: Mapping[str, Any], floor: float) -> None:
    """Raise DataError (one line, with the numbers) if the held-out gender accuracy is below `floor`."""
    acc = float(metrics["gender"]["test_accuracy"])
    if acc < floor:
        raise DataError(
            f"attribute classifier held-out gender accuracy {acc:.3f} (n={metrics['n']['test']}) is below "
            f"audit.gender_accuracy_floor {floor:.3f}; no audit reported (train longer via audit.classifier.epochs, "
            "use more images, or lower the floor)"
        )


def labelled_images(
    manifest: str | os.PathLike, images: str | os.PathLike
) -> tuple[np.ndarray, list[str], np.ndarray, dict[str, np.ndarray]]:
    """The manifest's images in array order: (split (N,), stable keys "prompt/index", uint8 pixels (N, H, W, 3),
    {head: label strings (N,)})."""
    from biasdiff.artifacts.manifest import load_images

    table, array = load_images(manifest, images, columns=("array_index", "prompt", "index", "split", *HEADS))
    table = table.sort_values("array_index")
    keys = [f"{p}/{i}" for p, i in zip(table["prompt"], table["index"])]
    pixels = np.asarray(array[table["array_index"].to_numpy()])
    return table["split"].to_numpy(), keys, pixels, {h: table[h].astype(str).to_numpy() for h in HEADS}


def run_classifier(
    *,
    manifest: str | os.PathLike,
    images: str | os.PathLike,
    outputs: Mapping[str, str | os.PathLike],
    settings: Mapping[str, Any],
) -> dict:
    """Stage entry point (rule train_attribute_classifier): train on the manifest's labeled images, write the
    classifier (`outputs` weights and meta: model.safetensors and classifier.json, in one directory) and its metrics
    JSON (`outputs["metrics"]`).

    The floor on held-out gender accuracy is not checked here (changing it must not retrain): the audits that use
    the classifier check it and refuse to report, and these metrics are the evidence they cite.
    """
    from biasdiff.devices import resolve_device
    from biasdiff.io import write_json

    split, keys, pixels, attrs = labelled_images(manifest, images)
    roles = classifier_splits(split, keys, settings["seed"], settings["test_fraction"])
    device = resolve_device(settings["device"])
    classifier, metrics = train_attribute_classifier(pixels, attrs, roles, settings, device=device)
    log.info(
        "held-out accuracy: gender %.4f, occupation %.4f (n=%d)",
        metrics["gender"]["test_accuracy"], metrics["occupation"]["test_accuracy"], metrics["n"]["test"],
    )
    classifier.save(Path(outputs["weights"]).parent)
    write_json(metrics, outputs["metrics"])
    return metrics
