"""Does a training setting give a model whose samples follow the word? Train, sample, classify, in one call.

Trains the word-conditioned DDPM on the real manifest and conditioning table of a finished run (results/) with
config.yaml's `train:` section plus overrides, then draws `--n` EMA samples per word (DDIM, CFG) and labels them
with the run's attribute classifier. Prints, per word, P(female) and the occupation mix, and two contrasts that
say whether the conditioning was learnt: P(female | woman) - P(female | man) and P(nurse | nurse) -
P(nurse | philosopher) (both 0 for a model that ignores the word, near 1 for one that follows it).

Used to choose config.yaml's training settings (benchmarks/RESULTS.md, "Choosing the default training").

Usage: .venv/bin/python benchmarks/probe_conditioning.py --name s4 --set steps=600 unet.cond_scale=11.3 \
           [--results results] [--n 48] [--out benchmarks/out/probe]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]

from biasdiff.audit.classifier import AttributeClassifier  # noqa: E402
from biasdiff.devices import autocast_dtype  # noqa: E402
from biasdiff.grid import save_grid  # noqa: E402
from biasdiff.model.sampling import sample_images  # noqa: E402
from biasdiff.model.unet import load_model_dir  # noqa: E402
from biasdiff.train.trainer import train_ddpm  # noqa: E402
from bench_train import default_train_cfg  # noqa: E402

WORDS = ["man", "woman", "nurse", "philosopher", "person", None]


def merged_train_cfg(overrides: list[str]) -> dict:
    """bench_train's default train config (schema defaults <- config.yaml) <- `key.sub=value` overrides (YAML values)."""
    cfg = default_train_cfg()
    for item in overrides:
        path, _, raw = item.partition("=")
        node = cfg
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = yaml.safe_load(raw)
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--set", nargs="*", default=[], help="train-config overrides, key.sub=value")
    parser.add_argument("--results", default="results")
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--sample-steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--eta", type=float, default=1.0, help="DDIM eta (1 = stochastic, 0 = deterministic)")
    parser.add_argument("--model-dir", help="probe this trained model directory instead of training one")
    parser.add_argument("--out", default="benchmarks/out/probe")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                        help="training and sampling precision (autocast of the forward passes)")
    args = parser.parse_args()

    res, out = Path(args.results), Path(args.out) / args.name
    cfg = merged_train_cfg(args.set)
    cfg.update({"wandb": {"mode": "disabled", "project": "probe"}, "grid": {**cfg["grid"], "every": 0},
                "checkpoint_every": 10**6, "device": "cpu", "precision": args.precision})
    amp = autocast_dtype(args.precision, torch.device("cpu"), "--precision")
    user = yaml.safe_load((ROOT / "config.yaml").read_text())
    prompts, size = user["prompts"], user["image_size"]
    tic = time.perf_counter()
    if args.model_dir:
        model_dir = Path(args.model_dir)
        result = json.loads((model_dir / "train_config.json").read_text())["result"]
    else:
        model_dir = out / "model"
        result = train_ddpm(res / "manifest/images.parquet", res / "manifest/images.npy",
                            res / "embeddings/conditioning.parquet", model_dir, out / "checkpoints", cfg, size,
                            {p: v["words"] for p, v in prompts.items()})
    train_s = time.perf_counter() - tic

    model, sched = load_model_dir(model_dir, ema=True, device="cpu", dtype="float32")
    table = pd.read_parquet(res / "embeddings/conditioning.parquet")
    vectors = {w: np.asarray(v, dtype=np.float32) for w, v in zip(table.word, table.vector)}
    clf = AttributeClassifier.load(res / "audit/classifier")
    rows, grids = [], []
    tic = time.perf_counter()
    for word in WORDS:
        vec = vectors[word] if word else np.zeros_like(next(iter(vectors.values())))
        imgs = sample_images(model, sched, vec, list(range(args.n)), image_size=size, sampler="ddim",
                             steps=args.sample_steps, guidance_scale=args.guidance, eta=args.eta, batch_size=64,
                             amp=amp, progress=False)
        grids.append(imgs[:8])
        members = clf.member_proba(imgs)["gender"].argmax(-1)  # (members, N) class index per member
        pred = clf.labels_of(clf.predict_proba(imgs))
        occ = pd.Series(pred["occupation"]).value_counts(normalize=True)
        rows.append({"word": word or "(null)", "frac_female": float(np.mean(pred["gender"] == "female")),
                     "frac_disputed": float(np.mean((members != members[0]).any(0))),
                     **{f"occ_{k}": float(occ.get(k, 0.0)) for k in ("nurse", "philosopher", "none")}})
    sample_s = time.perf_counter() - tic
    save_grid(np.concatenate(grids), out / "grid.png", n=len(grids) * 8)
    frame = pd.DataFrame(rows).set_index("word")
    summary = {
        "name": args.name, "overrides": args.set, "eta": args.eta, "guidance": args.guidance,
        "precision": args.precision, "n": args.n,
        "train_s": round(train_s, 1), "sample_s": round(sample_s, 1),
        "final_val_loss": result["final_val_loss"],
        "gender_contrast": float(frame.loc["woman", "frac_female"] - frame.loc["man", "frac_female"]),
        "occupation_contrast": float(frame.loc["nurse", "occ_nurse"] - frame.loc["philosopher", "occ_nurse"]),
    }
    print(frame.round(3).to_string())
    print(json.dumps(summary))
    (out / "summary.json").write_text(json.dumps({**summary, "per_word": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
