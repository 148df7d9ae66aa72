"""Sampling throughput (DDIM-k vs ancestral DDPM-T) and whether the two samplers' audits agree.

Part 1 (always): images/s of guided sampling (cond + uncond in one batch) with the DDIM and DDPM samplers, on the
given trained model or, without one, on config.yaml's UNet (train.unet at image_size) with random weights
(throughput does not depend on the weights). Reports the DDIM speed-up over DDPM (goal >= 15x for DDIM-50 vs
DDPM-1000).

Part 2 (with --model and --classifier): for each --words entry, n images from both samplers from the SAME seeds
(same initial noise, so the comparison is paired), labelled by the attribute classifier; P(female) with 95% Wilson
intervals per sampler, the difference, whether the intervals overlap, and McNemar's exact test on the paired labels.

Usage:
  .venv/bin/python benchmarks/bench_sample.py [--throughput-n 16]
  .venv/bin/python benchmarks/bench_sample.py --model results/models/default --classifier results/audit/classifier \
      --conditioning results/embeddings/conditioning.parquet --words nurse person --n 64
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]

from biasdiff.audit.classifier import AttributeClassifier  # noqa: E402
from biasdiff.stats import wilson_interval  # noqa: E402
from biasdiff.model.sampling import sample_images  # noqa: E402
from biasdiff.artifacts.conditioning import condition_vector  # noqa: E402
from biasdiff.sample.stage import image_seeds  # noqa: E402
from biasdiff.model.unet import build_scheduler, build_unet, load_model_dir  # noqa: E402


def load(args):
    if args.model:
        model, scheduler = load_model_dir(args.model, ema=True, device="cpu", dtype="float32")
        return model, scheduler, f"trained model {args.model}"
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    model = build_unet({"image_size": cfg["image_size"], "cond_dim": 128, **cfg["train"]["unet"]}).eval()
    return model, build_scheduler(), f"config.yaml UNet at {cfg['image_size']} px, random weights"


def timed(model, scheduler, cond, seeds, sampler, steps, size, batch, eta=1.0, amp=None):
    tic = time.perf_counter()
    images = sample_images(model, scheduler, cond, seeds, image_size=size, sampler=sampler, steps=steps,
                           guidance_scale=3.0, eta=eta, batch_size=batch, amp=amp, progress=False)
    return images, time.perf_counter() - tic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="trained model directory (results/models/{model})")
    ap.add_argument("--conditioning", help="conditioning.parquet (with --model)")
    ap.add_argument("--classifier", help="attribute classifier directory (results/audit/classifier)")
    ap.add_argument("--words", nargs="+", default=["nurse"])
    ap.add_argument("--n", type=int, default=64, help="images per word and sampler in part 2")
    ap.add_argument("--throughput-n", type=int, default=16)
    ap.add_argument("--ddim-steps", type=int, default=50)
    ap.add_argument("--eta", type=float, default=1.0, help="DDIM eta (config default 1)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model, scheduler, what = load(args)
    size = int(model.config.sample_size)
    cond_dim = int(model.config.cond_dim)
    T = scheduler.config.num_train_timesteps
    print(f"# {what}; torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f}")

    if args.conditioning:
        from biasdiff.artifacts.conditioning import load_conditioning

        table = load_conditioning(args.conditioning)
    else:
        rng = np.random.default_rng(0)
        table = {"nurse": rng.normal(size=cond_dim).astype(np.float32)}

    # Part 1: throughput
    cond = condition_vector(table, args.words[0] if args.words[0] in table else next(iter(table)))
    seeds = image_seeds(0, "bench", args.throughput_n)
    batch = min(args.batch_size, args.throughput_n)
    _, t_ddim = timed(model, scheduler, cond, seeds, "ddim", args.ddim_steps, size, batch, args.eta)
    _, t_ddpm = timed(model, scheduler, cond, seeds, "ddpm", None, size, batch)
    n = len(seeds)
    print("\n| sampler | images | wall s | images/s | UNet rows/s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| DDIM-{args.ddim_steps} | {n} | {t_ddim:.1f} | {n / t_ddim:.3f} | {2 * n * args.ddim_steps / t_ddim:.0f} |")
    print(f"| DDPM-{T} | {n} | {t_ddpm:.1f} | {n / t_ddpm:.4f} | {2 * n * T / t_ddpm:.0f} |")
    _, t_bf16 = timed(model, scheduler, cond, seeds, "ddim", args.ddim_steps, size, batch, args.eta, amp=torch.bfloat16)
    print(f"| DDIM-{args.ddim_steps}, bf16 autocast | {n} | {t_bf16:.1f} | {n / t_bf16:.3f} | "
          f"{2 * n * args.ddim_steps / t_bf16:.0f} |")
    print(f"\nDDIM-{args.ddim_steps} speed-up over DDPM-{T}: {t_ddpm / t_ddim:.1f}x (goal >= 15x); bf16 over fp32 DDIM: "
          f"{t_ddim / t_bf16:.2f}x; load average now {os.getloadavg()[0]:.1f}", flush=True)

    # Part 2: audit agreement
    if not (args.model and args.classifier):
        print("\n(no --model/--classifier: audit agreement not measured)")
        return
    clf = AttributeClassifier.load(args.classifier)
    print(f"\n| word | n | DDIM-{args.ddim_steps} P(female) [95% CI] | DDPM-{T} P(female) [95% CI] | difference | "
          "CIs overlap | paired disagreements (DDIM f / DDPM f) | McNemar exact p | DDPM s |")
    print("|---|---:|---|---|---:|---|---|---:|---:|")
    for word in args.words:
        cond = condition_vector(table, word)
        seeds = image_seeds(0, word, args.n)  # the sample stage's own seeds
        bs = min(args.batch_size, args.n)
        a, _ = timed(model, scheduler, cond, seeds, "ddim", args.ddim_steps, size, bs, args.eta)
        b, tb = timed(model, scheduler, cond, seeds, "ddpm", None, size, bs)
        fa = clf.predict(a)["gender"] == "female"
        fb = clf.predict(b)["gender"] == "female"
        ca, cb = wilson_interval(int(fa.sum()), len(fa)), wilson_interval(int(fb.sum()), len(fb))
        only_a, only_b = int(np.sum(fa & ~fb)), int(np.sum(~fa & fb))
        p = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
        overlap = ca[0] <= cb[1] and cb[0] <= ca[1]
        print(f"| {word} | {args.n} | {fa.mean():.3f} [{ca[0]:.3f}, {ca[1]:.3f}] | {fb.mean():.3f} [{cb[0]:.3f}, "
              f"{cb[1]:.3f}] | {fa.mean() - fb.mean():+.3f} | {'yes' if overlap else 'NO'} | {only_a} / {only_b} | "
              f"{p:.3g} | {tb:.0f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
