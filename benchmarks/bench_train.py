"""Training throughput of the default word-conditioned UNet (config.yaml's train.unet) at 32 px on this machine.

Measures, in one run:
- the machine's fp32 matmul rate (GFLOP/s, 1024x1024 matmuls) as the ceiling;
- a bare loop (fixed batch; forward, MSE, backward, AdamW step) in images/s, with FLOP/s from
  torch.utils.flop_counter (forward + backward of one step);
- the full training loop (`train_ddpm` on an in-memory synthetic manifest: schedule, noise, dropout, clipping,
  LR schedule, EMA, logging; validation and checkpoints excluded) in images/s; its overhead over the bare loop;
- the same in bf16 autocast (weights, optimizer and loss fp32), with the achieved FLOP/s against the bf16 matmul rate;
- variants of the bare loop: threads 1 vs 2, channels_last, batch size, torch.compile (with --compile);
- with --baseline, issue 13's baseline (the attention UNet default before it, fp32) in the same run, and the ratio;
- peak RSS, and the load average before and after (the machine is shared).

Usage: .venv/bin/python benchmarks/bench_train.py [--steps 12] [--compile] [--quick] [--baseline] [--batch B]
       [--unet '{block_out_channels: [32, 64, 128]}']
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import yaml
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]

from biasdiff.model.unet import build_scheduler, build_unet  # noqa: E402
from biasdiff.train.trainer import train_ddpm  # noqa: E402
from biasdiff.manifest.build import write_manifest  # noqa: E402
from biasdiff.config import section_defaults  # noqa: E402
from biasdiff.devices import autocast  # noqa: E402
from biasdiff.hardware import cpu_bf16_flags  # noqa: E402

SIZE = 32
# Issue 13's "today's fp32 default": train.unet before self-attention was dropped (config.yaml at 0901a2f).
# Complete, so that config.yaml's later keys (layers_per_block per level, upsample_conv) do not leak into it.
BASELINE_UNET = {"block_out_channels": [24, 48, 96], "layers_per_block": 1, "attention_resolutions": [8],
                 "attention_head_dim": 24, "norm_num_groups": 8, "mid_attention": True, "cond_scale": 11.3137,
                 "upsample_conv": True}
# Three prompts of the default config with their words (what the timed training sees; pixels are random).
PROMPT_WORDS = {
    "male_nurse": ["man", "nurse", "person"],
    "female_nurse": ["woman", "nurse", "person"],
    "man": ["man", "person", "man"],
}


def default_train_cfg() -> dict:
    cfg = section_defaults("train")
    user = yaml.safe_load((ROOT / "config.yaml").read_text())["train"]
    for key, value in user.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) and isinstance(cfg.get(key), dict) else value
    return cfg


def matmul_gflops(threads: int, n: int = 1024, reps: int = 20, dtype=torch.float32) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    tic = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - tic) / 1e9


def bare_loop(unet_cfg: dict, batch: int, steps: int, threads: int, channels_last=False, compile_=False, amp=None):
    """(images/s, FLOPs per step) of forward + MSE + backward + AdamW step on one fixed batch; `amp`: autocast dtype
    of the forward pass (weights, optimizer and loss fp32, as in training)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_unet({**unet_cfg, "image_size": SIZE, "cond_dim": 128}).train()
    sched = build_scheduler()
    x0 = torch.rand(batch, 3, SIZE, SIZE) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.randint(0, 1000, (batch,))
    cond = torch.randn(batch, 128)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x0, noise = x0.contiguous(memory_format=torch.channels_last), noise.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-5, fused=True)  # as train_ddpm's
    fwd = torch.compile(model) if compile_ else model

    def step():
        with autocast(torch.device("cpu"), amp):
            eps = fwd(sched.add_noise(x0, noise, t), t, cond)
        loss = F.mse_loss(eps.float(), noise)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    for _ in range(2):
        step()
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - tic), flops


def full_loop(cfg: dict, steps: int, threads: int, precision: str = "fp32") -> tuple[float, float]:
    """(steady-state images/s of train_ddpm's steps, wall seconds of the whole call) on synthetic data."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = 6 * 64
        prompts = list(PROMPT_WORDS)
        rows = [{"array_index": i, "prompt": prompts[i % len(prompts)], "words": PROMPT_WORDS[prompts[i % len(prompts)]],
                 "split": "val" if i < 6 else "train"} for i in range(n)]
        write_manifest(pd.DataFrame(rows), rng.integers(0, 255, (n, SIZE, SIZE, 3), dtype=np.uint8), tmp / "m.parquet",
                       tmp / "a.npy")
        vocab = sorted({w for ws in PROMPT_WORDS.values() for w in ws})
        pd.DataFrame({"word": vocab, "vector": list(rng.normal(size=(len(vocab), 128)).astype(np.float32))}).to_parquet(
            tmp / "c.parquet")
        run_cfg = {**cfg, "steps": steps, "threads": threads, "val_every": 10**6, "checkpoint_every": 10**6,
                   "wandb": {"mode": "disabled", "project": "bench"}, "grid": {**cfg["grid"], "n": 1, "steps": 1, "every": 0},
                   "device": "cpu", "precision": precision}
        tic = time.perf_counter()
        train_ddpm(tmp / "m.parquet", tmp / "a.npy", tmp / "c.parquet", tmp / "out", tmp / "ck", run_cfg, SIZE,
                   PROMPT_WORDS)
        wall = time.perf_counter() - tic
        log = pd.read_csv(tmp / "out" / "train_log.csv")
    # the final step also runs validation (excluded here); skip 2 warm-up steps
    steady = log.iloc[2:-1]
    return float(steady["images_per_s"].median()), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile on CPU)")
    parser.add_argument("--unet", default=None, help="YAML mapping overriding train.unet, e.g. '{block_out_channels: [32, 64, 128]}'")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: config.yaml's)")
    parser.add_argument("--quick", action="store_true", help="only the fp32 / bf16 bare and full loops")
    parser.add_argument("--baseline", action="store_true",
                        help="also time issue 13's baseline in this run: the UNet default before it (self-attention at "
                             "8 px and in the middle block) in fp32, bare and full loop; prints the speed-up over it")
    args = parser.parse_args()
    cfg = default_train_cfg()
    if args.unet:
        cfg["unet"] = {**cfg["unet"], **yaml.safe_load(args.unet)}
    if args.batch:
        cfg["batch_size"] = args.batch
    unet, batch = cfg["unet"], cfg["batch_size"]
    load0 = os.getloadavg()
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} on {os.cpu_count()} cores; "
          f"CPU bf16 units: {cpu_bf16_flags() or 'none'}; unet {unet}, batch {batch}")
    rows = []
    for th in (2, 1) if not args.quick else (2,):
        for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            rows.append((f"{name} matmul 1024^2, {th} thread(s)", f"{matmul_gflops(th, dtype=dt):.0f} GFLOP/s", ""))
    bf16_rate = matmul_gflops(2, dtype=torch.bfloat16)
    ips, flops = bare_loop(unet, batch, args.steps, 2)
    rows.append((f"bare loop fp32, batch {batch}, 2 threads", f"{ips:.1f} img/s",
                 f"{flops / 1e9:.1f} GFLOP/step -> {flops * ips / batch / 1e9:.0f} GFLOP/s"))
    ips16, _ = bare_loop(unet, batch, args.steps, 2, amp=torch.bfloat16)
    rows.append((f"bare loop bf16 autocast, batch {batch}, 2 threads", f"{ips16:.1f} img/s",
                 f"{flops * ips16 / batch / 1e9:.0f} GFLOP/s = {100 * flops * ips16 / batch / 1e9 / bf16_rate:.0f}% of the "
                 f"bf16 matmul rate; {ips16 / ips:.2f}x fp32"))
    full_ips, wall = full_loop(cfg, args.steps + 4, 2)
    rows.append((f"full train_ddpm loop fp32, batch {batch}, 2 threads", f"{full_ips:.1f} img/s",
                 f"overhead vs bare {100 * (ips / full_ips - 1):+.1f}%; call wall {wall:.1f} s"))
    full16, wall16 = full_loop(cfg, args.steps + 4, 2, precision="bf16")
    rows.append((f"full train_ddpm loop bf16, batch {batch}, 2 threads", f"{full16:.1f} img/s",
                 f"overhead vs bare {100 * (ips16 / full16 - 1):+.1f}%; {full16 / full_ips:.2f}x fp32; call wall "
                 f"{wall16:.1f} s"))
    if args.baseline:
        base_cfg = {**cfg, "unet": {**section_defaults("train")["unet"], **BASELINE_UNET}}
        b_ips, b_flops = bare_loop(base_cfg["unet"], batch, args.steps, 2)
        rows.append((f"baseline bare loop fp32 (attention UNet), batch {batch}", f"{b_ips:.1f} img/s",
                     f"{b_flops / 1e9:.1f} GFLOP/step; default bf16 bare is {ips16 / b_ips:.2f}x this"))
        b_full, _ = full_loop(base_cfg, args.steps + 4, 2)
        rows.append((f"baseline full train_ddpm loop fp32, batch {batch}", f"{b_full:.1f} img/s",
                     f"default bf16 full loop is {full16 / b_full:.2f}x this"))
    if args.quick:
        _print(rows)
        return
    for label, kw in [("1 thread", dict(threads=1)), ("channels_last", dict(threads=2, channels_last=True))]:
        v, _ = bare_loop(unet, batch, args.steps, **kw)
        rows.append((f"bare loop, batch {batch}, {label}", f"{v:.1f} img/s", f"{100 * (v / ips - 1):+.1f}% vs default"))
    for b in (32, 128):
        v, _ = bare_loop(unet, b, max(4, args.steps * batch // b), 2)
        rows.append((f"bare loop, batch {b}, 2 threads", f"{v:.1f} img/s", f"{100 * (v / ips - 1):+.1f}% vs batch {batch}"))
    if args.compile:
        tic = time.perf_counter()
        v, _ = bare_loop(unet, batch, args.steps, 2, compile_=True)
        rows.append(("bare loop, torch.compile", f"{v:.1f} img/s",
                     f"{100 * (v / ips - 1):+.1f}% vs eager (compile+run {time.perf_counter() - tic:.0f} s)"))
    steps = cfg["steps"]
    rows.append((f"default training ({steps} steps x {batch}) estimate", f"{steps * batch / full_ips / 60:.1f} min",
                 "steps only; + validation, checkpoints, grids"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak RSS of this process", f"{peak:.0f} MiB", ""))
    load1 = os.getloadavg()
    rows.append(("load average after", f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}", ""))
    _print(rows)


def _print(rows) -> None:
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>14}  {note}")


if __name__ == "__main__":
    main()
