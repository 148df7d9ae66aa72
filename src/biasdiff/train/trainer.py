"""The training loop: data -> noise -> loss -> step -> EMA -> log, with checkpoint/resume as a first-class path.

`train_ddpm` trains a `WordConditionedUNet` (epsilon prediction, MSE, DDPMScheduler with linear beta 1e-4..0.02,
T = 1000) on the manifest's train split, every image with each of its configured words (see `schedule`), with
per-sample classifier-free-guidance dropout, AdamW + OneCycle or cosine-with-warmup, gradient clipping and an
EMA of the weights (diffusers EMAModel with warm-up). Randomness is a pure function of (seed, step), so a resumed
run and a data-parallel run see exactly the examples, timesteps, noise and dropout of a single uninterrupted run.

Multi-process (accelerate, one process per device, launched by `biasdiff.train.launch`): every process draws the
same global batch and trains on its contiguous slice; DDP averages the gradients. Only the main process
validates, samples, logs and writes checkpoints/outputs.
"""

from __future__ import annotations

import copy
import logging
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from biasdiff.artifacts.conditioning import load_conditioning
from biasdiff.artifacts.integrity import recorded_integrity
from biasdiff.artifacts.manifest import load_images
from biasdiff.devices import resolve_device
from biasdiff.errors import ConfigError, TrainingError
from biasdiff.io import atomic_directory, write_json
from biasdiff.seeds import derive_seed
from biasdiff.train.checkpoint import config_hash, latest_checkpoint, save_checkpoint
from biasdiff.train.data import TRAIN_COLUMNS, SplitData, conditioning_matrix, select_split
from biasdiff.devices import autocast, autocast_dtype, precision_label
from biasdiff.model.directory import snapshot_subdir, weights_hashes
from biasdiff.model.pixels import to_unit
from biasdiff.model.unet import WordConditionedUNet, build_scheduler, build_unet
from biasdiff.train.report import plot_loss, sample_grid, write_log_csv
from biasdiff.train.schedule import WordSchedule, apply_uncond, step_generator, uncond_mask

log = logging.getLogger(__name__)

LOG_COLUMNS = ["step", "loss", "val_loss", "lr", "images_per_s"]
# Keys that never change the trained weights: a checkpoint stays valid when only these differ.
_NOT_HASHED = ("wandb", "checkpoint_every", "keep_checkpoints", "grid", "threads", "val_every", "val_batch_size")


class _LogStream:
    """A file-like object that sends tqdm's progress lines to the logger (so the bar lands in the rule's log)."""

    def write(self, text: str) -> None:
        text = text.strip("\r\n ")
        if text:
            logging.getLogger("biasdiff.progress").info(text)

    def flush(self) -> None:
        pass


def total_steps(train_cfg: Mapping[str, Any], steps_per_epoch: int) -> int:
    """Optimizer steps to run: `steps` when set, else `epochs * steps_per_epoch` (exactly one must be set)."""
    steps, epochs = train_cfg.get("steps"), train_cfg.get("epochs")
    if (steps is None) == (epochs is None):
        raise ConfigError(f"config keys train.steps / train.epochs: set exactly one (got steps={steps}, epochs={epochs})")
    return int(steps) if steps is not None else int(math.ceil(epochs * steps_per_epoch))


def make_lr_scheduler(optimizer, cfg: Mapping[str, Any], n_steps: int):
    """OneCycle (the seed's) or cosine with linear warm-up, over `n_steps` optimizer steps."""
    kind = cfg["type"]
    warmup = int(round(cfg["warmup_fraction"] * n_steps))
    if kind == "onecycle":
        total = max(n_steps, 3)
        # torch's OneCycleLR divides by (pct_start * total - 1): keep the warm-up phase longer than one step, so a
        # short run (a benchmark, a smoke config) gets a warm-up of >= 1.5 steps instead of a ZeroDivisionError.
        pct = min(max(cfg["warmup_fraction"], 1.5 / total), 1 - 1.5 / total)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total, pct_start=pct,
        )
    if kind == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=n_steps)
    raise ConfigError(f"config key train.lr_schedule.type: {kind!r} is not one of ['onecycle', 'cosine']")


def diffusion_loss(model, scheduler, x0, t, noise, cond, amp_dtype: torch.dtype | None) -> torch.Tensor:
    """MSE between the true noise and eps_hat(x_t, t, cond); x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
    x_t = scheduler.add_noise(x0, noise, t)
    with autocast(x0.device, amp_dtype):
        eps = model(x_t, t, cond)
    return F.mse_loss(eps.float(), noise)


@torch.no_grad()
def validation_loss(model, scheduler, data: SplitData, cond_matrix: torch.Tensor, word_ids: Mapping[str, int],
                    seed: int, batch_size: int, device: torch.device, amp_dtype=None) -> float:
    """True mean MSE over every (val image, word slot) pair, with a fixed t and noise per pair (comparable curves)."""
    pairs = [(i, slot) for i in range(len(data.words)) for slot in range(len(data.words[i]))]
    if not pairs:
        return float("nan")
    n_t = scheduler.config.num_train_timesteps
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        rows = torch.tensor([i for i, _ in chunk])
        ts, noises = [], []
        for i, slot in chunk:
            g = torch.Generator().manual_seed(derive_seed(seed, "val", int(data.array_index[i]), slot))
            ts.append(torch.randint(0, n_t, (1,), generator=g))
            noises.append(torch.randn((1, 3, *data.images.shape[1:3]), generator=g))
        t = torch.cat(ts).to(device)
        noise = torch.cat(noises).to(device)
        cond = cond_matrix[torch.tensor([word_ids[data.words[i][s]] for i, s in chunk])].to(device)
        x0 = to_unit(data.images[rows]).to(device)
        x_t = scheduler.add_noise(x0, noise, t)
        with autocast(device, amp_dtype):
            eps = model(x_t, t, cond)
        total += F.mse_loss(eps.float(), noise, reduction="none").mean(dim=(1, 2, 3)).sum().item()
    model.train(was_training)
    return total / len(pairs)


def _ema_copy(model: WordConditionedUNet, ema: EMAModel) -> WordConditionedUNet:
    ema_model = copy.deepcopy(model)
    ema.copy_to(ema_model.parameters())
    return ema_model.eval()


def _init_wandb(cfg: Mapping[str, Any], run_name: str, run_id: str, wandb_dir: str | Path | None, resolved: dict):
    mode = cfg["mode"]
    if mode == "disabled":
        return None
    import wandb

    directory = Path(wandb_dir) if wandb_dir else Path("wandb")
    directory.mkdir(parents=True, exist_ok=True)
    return wandb.init(project=cfg["project"], name=run_name, id=run_id, resume="allow", mode=mode,
                      dir=str(directory), config=resolved)


class _StopRequest:
    """Catch SIGTERM and SIGINT while training (main thread only): the loop finishes its step, saves a checkpoint and
    stops with a TrainingError, instead of dying mid-step and losing everything since the last checkpoint."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._catch)

    def _catch(self, signum, frame):
        self.signum = signum

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def train_ddpm(
    manifest_path: str | Path,
    array_path: str | Path,
    conditioning_path: str | Path,
    out_dir: str | Path,
    checkpoint_dir: str | Path,
    settings: Mapping[str, Any],
    image_size: int,
    prompt_words: Mapping[str, list[str]],
    code: str = "",
    wandb_dir: str | Path | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) one model and write `out_dir` = results/models/{model}/.

    Inputs: manifest Parquet (array_index, prompt, words, split) + packed uint8 (N, H, W, 3) images at `image_size`,
    conditioning Parquet (word, vector). `settings` is the validated `train:` config section; `prompt_words` maps each
    prompt to its configured words (checked against the manifest). Checkpoints go to `checkpoint_dir` (outside the
    rule's outputs). `on_step(step)` is called after every completed optimizer step (progress hooks, tests).

    Writes unet/, unet_ema/, scheduler/, train_config.json, train_log.csv, loss.png, samples.png. Returns the summary
    dict stored in train_config.json under "result".
    """
    cfg = dict(settings)
    device = resolve_device(cfg["device"])
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    accelerator = Accelerator(cpu=device.type == "cpu")
    device = accelerator.device
    rank, world = accelerator.process_index, accelerator.num_processes
    amp_dtype = autocast_dtype(cfg["precision"], device)
    seed = int(cfg["seed"])

    manifest, images = load_images(manifest_path, array_path, columns=TRAIN_COLUMNS)
    if images.shape[1:3] != (image_size, image_size):
        raise ConfigError(f"config key image_size: {image_size} but the packed images are {images.shape[1]}x{images.shape[2]}; "
                          "rebuild the manifest")
    train = select_split(manifest, images, "train", prompt_words)
    val = select_split(manifest, images, "val", prompt_words)
    vocab, cond_matrix = conditioning_matrix(load_conditioning(conditioning_path),
                                             [w for ws in prompt_words.values() for w in ws])
    word_ids = {w: i for i, w in enumerate(vocab)}

    model_cfg = {**cfg["unet"], "image_size": image_size, "cond_dim": int(cond_matrix.shape[1])}
    torch.manual_seed(derive_seed(seed, "init"))
    model = build_unet(model_cfg)  # config errors (size, widths) surface here, before any step
    noise_scheduler = build_scheduler(cfg["noise"])
    schedule = WordSchedule(train.words, cfg["batch_size"], cfg["word_schedule"], seed)
    n_steps = total_steps(cfg, schedule.steps_per_epoch)

    # `precision` is what train.precision resolved to on this machine (auto differs between CPUs): it is part of the
    # checkpoint key, so a bf16 checkpoint is never resumed in fp32 or the other way round.
    resolved = {"train": cfg, "image_size": image_size, "prompt_words": {k: list(v) for k, v in prompt_words.items()},
                "code": code, "precision": precision_label(amp_dtype)}
    # The checkpoint key: everything the weights depend on. The manifest's bytes carry the content hash of the packed
    # pixels (verified against the array by load_images above); it is named here too, so the key says so itself.
    hashed = {**resolved, "train": {k: v for k, v in cfg.items() if k not in _NOT_HASHED},
              "images_sha256": recorded_integrity(manifest_path)["images_sha256"]}
    chash = config_hash(hashed, manifest_path, conditioning_path)

    opt_cfg = cfg["optimizer"]
    # fused: one kernel for all 145 tensors; on 2 CPU cores AdamW's step takes 1.7 ms instead of 10 ms (3% of a step)
    optimizer = torch.optim.AdamW(model.parameters(), lr=opt_cfg["lr"], eps=opt_cfg["eps"],
                                  betas=tuple(opt_cfg["betas"]), weight_decay=opt_cfg["weight_decay"],
                                  fused=device.type in ("cpu", "cuda"))
    lr_scheduler = make_lr_scheduler(optimizer, cfg["lr_schedule"], n_steps)
    ema_cfg = cfg["ema"]
    ema = EMAModel(model.parameters(), decay=ema_cfg["decay"], use_ema_warmup=ema_cfg["warmup"],
                   power=ema_cfg["power"], inv_gamma=ema_cfg["inv_gamma"], update_after_step=ema_cfg["start_step"],
                   foreach=True)

    start_step, rows, snapshots = 0, [], {}
    snapshot_steps = {int(s) for s in cfg.get("snapshot_steps") or ()}
    state = latest_checkpoint(checkpoint_dir, chash)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        lr_scheduler.load_state_dict(state["lr_scheduler"])
        ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["torch_rng"])
        start_step, rows = int(state["step"]), list(state["log"])
        snapshots = dict(state.get("snapshots") or {})
        log.info("resuming from checkpoint at step %d of %d (%s)", start_step, n_steps, checkpoint_dir)

    if cfg["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    model.to(device)
    ema.to(device)
    cond_matrix = cond_matrix.to(device)
    model.train()
    ddp_model = accelerator.prepare(model)
    fwd_model = torch.compile(ddp_model) if cfg["compile"] else ddp_model

    main = accelerator.is_main_process
    run = None
    if main:
        log.info("training %s: %d params, %d train / %d val images, %d steps (%d per epoch), %d process(es), device %s, "
                 "autocast %s", cfg["model"], sum(p.numel() for p in model.parameters()), len(train.words),
                 len(val.words), n_steps, schedule.steps_per_epoch, world, device, amp_dtype)
        run = _init_wandb(cfg["wandb"], cfg["model"], f"{cfg['model']}-{chash}", wandb_dir, resolved)

    def checkpoint(step: int) -> None:
        if main:
            save_checkpoint(checkpoint_dir, step, {
                "config_hash": chash, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "lr_scheduler": lr_scheduler.state_dict(), "ema": ema.state_dict(),
                "torch_rng": torch.get_rng_state(), "log": rows, "snapshots": snapshots,
            }, keep=cfg["keep_checkpoints"])
        accelerator.wait_for_everyone()

    n_t = noise_scheduler.config.num_train_timesteps
    bar = tqdm(total=n_steps, initial=start_step, desc=f"train {cfg['model']}", file=_LogStream(),
               mininterval=cfg["progress_interval_s"], disable=not main, ascii=True)
    stop = _StopRequest()  # SIGTERM (a cluster's time limit, Snakemake passing on Ctrl-C) ends the step, then stops
    try:
        for step in range(start_step, n_steps):
            tic = time.perf_counter()
            batch = schedule.batch(step)
            g = step_generator(seed, step)
            b = len(batch.rows)
            t = torch.randint(0, n_t, (b,), generator=g)
            noise = torch.randn((b, 3, image_size, image_size), generator=g)
            drop = uncond_mask(b, cfg["p_uncond"], g)
            ids = torch.tensor([word_ids[w] for w in batch.words])
            mine = np.array_split(np.arange(b), world)[rank]  # this process's contiguous slice of the global batch
            x0 = to_unit(train.images[torch.from_numpy(batch.rows[mine])]).to(device)
            if cfg["channels_last"]:
                x0 = x0.contiguous(memory_format=torch.channels_last)
            cond = apply_uncond(cond_matrix[ids[mine].to(device)], drop[mine].to(device))
            loss = diffusion_loss(fwd_model, noise_scheduler, x0, t[mine].to(device), noise[mine].to(device), cond,
                                  amp_dtype)
            mean_loss = accelerator.gather(loss.detach().reshape(1) * len(mine)).sum().item() / b
            if not math.isfinite(mean_loss):
                raise TrainingError(f"non-finite loss ({mean_loss}) at step {step + 1} in {precision_label(amp_dtype)} "
                                    f"(train.precision: {cfg['precision']}); training stopped, the last good checkpoint "
                                    f"in {checkpoint_dir} is kept (lower train.optimizer.lr, set train.precision: fp32, "
                                    "or check the data)")
            accelerator.backward(loss)
            if cfg["grad_clip"]:
                accelerator.clip_grad_norm_(ddp_model.parameters(), cfg["grad_clip"])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            lr = lr_scheduler.get_last_lr()[0]
            lr_scheduler.step()
            ema.step(model.parameters())
            done = step + 1
            if main and done in snapshot_steps:  # EMA weights kept for the training-length curve
                snapshots[done] = {k: v.detach().cpu().clone() for k, v in _ema_copy(model, ema).state_dict().items()}

            val_loss = float("nan")
            if main and (done % cfg["val_every"] == 0 or done == n_steps):
                val_loss = validation_loss(model, noise_scheduler, val, cond_matrix, word_ids, seed,
                                           cfg["val_batch_size"], device, amp_dtype)
                log.info("step %d: train loss %.4f, val loss %.4f, lr %.2e", done, mean_loss, val_loss, lr)
            elapsed = time.perf_counter() - tic
            row = {"step": done, "loss": mean_loss, "val_loss": val_loss, "lr": lr, "images_per_s": b / elapsed}
            rows.append(row)
            if run is not None:
                run.log({k: v for k, v in row.items() if k != "step" and not (isinstance(v, float) and math.isnan(v))},
                        step=done)
                if cfg["grid"]["every"] and done % cfg["grid"]["every"] == 0 and done < n_steps:  # last: _write_outputs
                    import wandb

                    grid = sample_grid(_ema_copy(model, ema), noise_scheduler, vocab, cond_matrix, cfg["grid"], image_size,
                                       seed, device, amp=amp_dtype)
                    run.log({"ema_samples": wandb.Image(grid, caption="rows: " + ", ".join([*vocab, "(null)"]))},
                            step=done)
            bar.update(1)
            bar.set_postfix(loss=f"{mean_loss:.4f}", refresh=False)
            if done % cfg["checkpoint_every"] == 0 or done == n_steps:
                checkpoint(done)
            if on_step is not None:
                on_step(done)
            if stop.signum is not None:
                if done % cfg["checkpoint_every"] != 0 and done != n_steps:
                    checkpoint(done)
                name = signal.Signals(stop.signum).name
                raise TrainingError(f"training stopped by {name} after step {done} of {n_steps}; checkpoint saved in "
                                    f"{checkpoint_dir}, rerun the same command to resume from it")
    finally:
        stop.restore()
    bar.close()

    result: dict[str, Any] = {}
    if main:
        result = _write_outputs(out_dir, model, ema, noise_scheduler, rows, resolved, chash, vocab, cond_matrix,
                                image_size, seed, device, n_steps, schedule.steps_per_epoch, len(train.words),
                                len(val.words), world, run, snapshots)
    accelerator.wait_for_everyone()
    if run is not None:
        run.finish()
    return result


def _write_outputs(out_dir, model, ema, noise_scheduler, rows, resolved, chash, vocab, cond_matrix, image_size, seed,
                   device, n_steps, steps_per_epoch, n_train, n_val, world, run, snapshots=None) -> dict[str, Any]:
    """Assemble results/models/{model}/ in a temporary sibling directory, then move it into place."""
    with atomic_directory(out_dir) as tmp:
        _write_snapshots(tmp, model, noise_scheduler, snapshots or {})
        result = _assemble_model_dir(tmp, model, ema, noise_scheduler, rows, resolved, chash, vocab, cond_matrix,
                                     image_size, seed, device, n_steps, steps_per_epoch, n_train, n_val, world, run)
    log.info("wrote %s (final loss %.4f, val %s)", out_dir, result["final_loss"], result["final_val_loss"])
    return result


def _write_snapshots(tmp, model, noise_scheduler, snapshots: Mapping[int, Mapping[str, torch.Tensor]]) -> None:
    """snapshots/step-NNNNNNN/{unet_ema,scheduler}/ for each kept intermediate step (train.snapshot_steps); their
    weights' hashes join train_config.json's with the final ones'."""
    for step, state in sorted(snapshots.items()):
        snap = copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format).eval()
        snap.load_state_dict(state)
        target = Path(tmp) / snapshot_subdir(step)
        snap.save_pretrained(target, safe_serialization=True)
        noise_scheduler.save_pretrained(target.parent / "scheduler")


def _assemble_model_dir(tmp, model, ema, noise_scheduler, rows, resolved, chash, vocab, cond_matrix, image_size, seed,
                        device, n_steps, steps_per_epoch, n_train, n_val, world, run) -> dict[str, Any]:
    """Write every file of a model directory into `tmp`; returns the `result` record of train_config.json."""
    model = model.to(memory_format=torch.contiguous_format).eval()
    model.save_pretrained(tmp / "unet", safe_serialization=True)
    ema_model = _ema_copy(model, ema)
    ema_model.save_pretrained(tmp / "unet_ema", safe_serialization=True)
    noise_scheduler.save_pretrained(tmp / "scheduler")
    frame = pd.DataFrame(rows, columns=LOG_COLUMNS)
    write_log_csv(frame, tmp / "train_log.csv")
    plot_loss(frame, tmp / "loss.png")
    grid_cfg = resolved["train"]["grid"]
    amp = torch.bfloat16 if resolved["precision"] == "bf16" else None
    grid = sample_grid(ema_model, noise_scheduler, vocab, cond_matrix, grid_cfg, image_size, seed, device, amp=amp)
    grid.save(tmp / "samples.png")
    if run is not None:
        import wandb

        run.log({"ema_samples": wandb.Image(grid, caption="rows: " + ", ".join([*vocab, "(null)"]))}, step=n_steps)
    val = frame["val_loss"].dropna()
    result = {"steps": n_steps, "steps_per_epoch": steps_per_epoch, "final_loss": float(frame["loss"].iloc[-1]),
              "final_val_loss": float(val.iloc[-1]) if len(val) else None, "n_train": n_train, "n_val": n_val,
              "num_processes": world, "config_hash": chash, "vocab": vocab, "cond_dim": int(cond_matrix.shape[1]),
              "params": sum(p.numel() for p in model.parameters()), "grid_rows": [*vocab, "(null)"],
              "weights_sha256": weights_hashes(tmp)}
    write_json({**resolved, "result": result}, tmp / "train_config.json")
    return result
