"""How much does the audit's instrument move? Retrain the attribute classifier with other seeds, relabel the samples.

On the manifest and samples of a finished run (results/), trains each classifier variant once per seed, with the
val/test cut fixed (seed 0) so only the training randomness differs: `single` = one width-32 network on the whole
train split (the classifier before the ensemble), `ensemble` = config.yaml's audit.classifier (5 width-16 members,
half the train split each). Labels every sample of every word and prints, per classifier, P(female) per word, the
time to train it (one thread, as the workflow runs it), and for every pair of classifiers the share of samples they
label alike. Two classifiers that differ only in seed should agree on nearly every sample; where they do not, the
audit's P(female) carries instrument noise on top of the sampling noise its Wilson interval covers.

Usage: .venv/bin/python benchmarks/bench_classifier.py [--results results] [--model default] [--seeds 0 1]
           [--variants single ensemble] [--precisions fp32 bf16] [--threads 1] [--out benchmarks/out/classifier.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from biasdiff.audit.classifier import classifier_splits, labelled_images, train_attribute_classifier
from biasdiff.config import validate_config

ROOT = Path(__file__).resolve().parents[1]


def variant_settings(name: str) -> dict:
    """The classifier settings of a variant: config.yaml's audit.classifier (schema defaults filled), changed."""
    base = dict(validate_config(yaml.safe_load((ROOT / "config.yaml").read_text()))["audit"]["classifier"])
    if name == "single":
        return {**base, "members": 1, "bag_fraction": 1.0, "width": 32}
    if name == "ensemble":
        return base
    raise SystemExit(f"unknown variant {name!r}; valid: single, ensemble")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--model", default="default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=["single", "ensemble"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["auto", "bf16", "fp32"],
                        help="audit.classifier.precision values to train each variant and seed with")
    parser.add_argument("--out", default="benchmarks/out/classifier.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    res = Path(args.results)
    split, keys, pixels, attrs = labelled_images(res / "manifest/images.parquet", res / "manifest/images.npy")
    sample_files = sorted((res / "samples" / args.model).glob("*.npy"))
    if not sample_files:
        raise SystemExit(f"no samples in {res / 'samples' / args.model}; run the workflow first")
    words = [f.stem for f in sample_files]
    samples = {w: np.load(f) for w, f in zip(words, sample_files)}

    female: dict[str, np.ndarray] = {}  # classifier name -> bool (all samples, words concatenated)
    report: dict[str, dict] = {}
    for variant, precision, seed in itertools.product(args.variants, args.precisions, args.seeds):
        settings = {**variant_settings(variant), "seed": seed, "precision": precision}
        roles = classifier_splits(split, keys, 0, settings["test_fraction"])
        tic = time.perf_counter()
        clf, metrics = train_attribute_classifier(pixels, attrs, roles, settings, progress=False)
        seconds = time.perf_counter() - tic
        name = f"{variant}/{precision}/seed{seed}"
        labels = {w: clf.predict(x)["gender"] == "female" for w, x in samples.items()}
        female[name] = np.concatenate([labels[w] for w in words])
        report[name] = {"seconds": round(seconds, 1), "test_gender_accuracy": metrics["gender"]["test_accuracy"],
                        "frac_female": {w: float(v.mean()) for w, v in labels.items()}}
        print(f"{name}: trained in {seconds:.0f} s, held-out gender accuracy "
              f"{metrics['gender']['test_accuracy']:.3f}", flush=True)


    print("\n| classifier | train s | " + " | ".join(words) + " |")
    print("|---|---:|" + "---:|" * len(words))
    for name, r in report.items():
        print(f"| {name} | {r['seconds']:.0f} | " + " | ".join(f"{r['frac_female'][w]:.3f}" for w in words) + " |")
    agreement = {f"{a} vs {b}": float(np.mean(female[a] == female[b])) for a, b in itertools.combinations(female, 2)}
    print("\nshare of samples labelled alike:")
    for pair, value in agreement.items():
        print(f"  {pair}: {value:.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": str(res), "model": args.model, "n_samples": {w: len(x) for w, x in
                                                                                      samples.items()},
                               "classifiers": report, "agreement": agreement}, indent=2) + "\n")


if __name__ == "__main__":
    main()
