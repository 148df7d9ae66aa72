"""Training loop: learning, the word schedule the loop really feeds, CFG dropout, resume == uninterrupted,
bad input (non-finite loss, missing word, undownsamplable size), real autocast, reload by path."""

from __future__ import annotations

import collections

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import biasdiff.train.trainer as trainer
from biasdiff.errors import ConfigError, DataError, TrainingError
from biasdiff.devices import autocast_dtype
from biasdiff.model.unet import build_scheduler, build_unet, load_model_dir
from biasdiff.train.schedule import WordSchedule, apply_uncond, step_generator, uncond_mask
from train_fixtures import COLOURS, PROMPT_WORDS, tiny_train_cfg, write_inputs

SIZE = 8


def _train(tmp_path, name="m", cfg=None, ckpt="ckpt", **kwargs):
    m, a, c = write_inputs(tmp_path)
    return trainer.train_ddpm(m, a, c, tmp_path / "models" / name, tmp_path / ckpt, cfg or tiny_train_cfg(), SIZE,
                              PROMPT_WORDS, **kwargs)


@pytest.mark.parametrize("amp", [None, torch.bfloat16], ids=["fp32", "bf16"])
def test_a_few_steps_overfit_a_tiny_fixed_batch(amp):
    """Also under bf16 autocast: the loss stays fp32 and the weights stay fp32 (AdamW updates them in fp32)."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build_unet({"image_size": SIZE, "cond_dim": 4, "block_out_channels": [16, 32], "attention_resolutions": [],
                        "norm_num_groups": 8})
    scheduler = build_scheduler()
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, SIZE, SIZE, generator=g) * 2 - 1
    t = torch.randint(0, 1000, (4,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    cond = torch.randn(4, 4, generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        loss = trainer.diffusion_loss(model, scheduler, x0, t, noise, cond, amp)
        assert loss.dtype == torch.float32
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert losses[-1] < 0.3 * losses[0], losses[::10]


@pytest.mark.parametrize("mode", ["per_word_steps", "shuffled_pairs"])
def test_schedule_gives_each_image_each_of_its_words_once_per_epoch(mode):
    words = [tuple(PROMPT_WORDS[p]) for p in PROMPT_WORDS for _ in range(5)]
    schedule = WordSchedule(words, batch_size=4, mode=mode, seed=3)
    fed = collections.defaultdict(list)
    for step in range(schedule.steps_per_epoch):
        b = schedule.batch(step)
        assert len(b.rows) <= 4
        for row, word in zip(b.rows, b.words):
            fed[int(row)].append(word)
    for row, ws in enumerate(words):
        if mode == "per_word_steps":
            assert tuple(fed[row]) == ws  # slot order kept: man -> man, person, man
        else:
            assert sorted(fed[row]) == sorted(ws)
    if mode == "per_word_steps":  # one step per word slot per batch: 15 images / 4 = 4 batches x 3 slots
        assert schedule.steps_per_epoch == 12
    # the next epoch reshuffles
    assert [schedule.batch(schedule.steps_per_epoch + s).rows.tolist() for s in range(3)] != [
        schedule.batch(s).rows.tolist() for s in range(3)]


def test_training_loop_feeds_exactly_the_configured_words_per_prompt(tmp_path, monkeypatch):
    """Record what the real loop gives the model: each prompt's images get exactly their words (female_nurse
    never gets man, the seed repo's bug), in the configured proportions."""
    m, a, c = write_inputs(tmp_path)
    table = pd.read_parquet(c)
    vec_to_word = {tuple(np.round(v, 5)): w for w, v in zip(table["word"], table["vector"])}
    colour_to_prompt = {col: p for p, col in COLOURS.items()}
    fed = collections.defaultdict(collections.Counter)
    real = trainer.diffusion_loss

    def spy(model, scheduler, x0, t, noise, cond, amp):
        corner = ((x0[:, :, 0, 0] + 1) * 127.5).round().numpy()
        for pix, vec in zip(corner, cond.numpy()):
            prompt = min(colour_to_prompt, key=lambda col: np.abs(np.array(col) - pix).sum())
            fed[colour_to_prompt[prompt]][vec_to_word[tuple(np.round(vec, 5))]] += 1
        return real(model, scheduler, x0, t, noise, cond, amp)

    monkeypatch.setattr(trainer, "diffusion_loss", spy)
    cfg = tiny_train_cfg(p_uncond=0.0, steps=None, epochs=1, val_every=1000, checkpoint_every=1000)
    trainer.train_ddpm(m, a, c, tmp_path / "out", tmp_path / "ckpt", cfg, SIZE, PROMPT_WORDS)
    n_train = 5  # per prompt (one of six is val)
    expected = {p: collections.Counter({w: n_train * ws.count(w) for w in ws}) for p, ws in PROMPT_WORDS.items()}
    assert dict(fed) == expected
    assert fed["female_nurse"]["man"] == 0


def test_cfg_dropout_rate_is_p_uncond():
    p, n = 0.05, 200_000
    mask = uncond_mask(n, p, step_generator(0, 0))
    rate = mask.float().mean().item()
    assert abs(rate - p) < 4 * (p * (1 - p) / n) ** 0.5  # within 4 standard errors
    cond = torch.ones(6, 3)
    dropped = apply_uncond(cond, torch.tensor([True, False, True, False, False, False]))
    assert dropped[[0, 2]].abs().sum() == 0 and torch.equal(dropped[[1, 3, 4, 5]], cond[[1, 3, 4, 5]])
    with pytest.raises(ConfigError, match="p_uncond"):
        uncond_mask(3, 1.5, step_generator(0, 0))


class _Killed(Exception):
    pass


def _train_killed_after(tmp_path, step, *args, **kwargs):
    """Train as `_train` does, but kill the run (an exception from the step hook) after optimizer step `step`."""

    def kill(done):
        if done == step:
            raise _Killed

    with pytest.raises(_Killed):
        _train(tmp_path, *args, on_step=kill, **kwargs)


def _weights(model_dir):
    return {sub: load_file(model_dir / sub / "diffusion_pytorch_model.safetensors") for sub in ("unet", "unet_ema")}


def test_killed_run_resumes_and_reaches_the_uninterrupted_weights(tmp_path):
    cfg = tiny_train_cfg(steps=6, checkpoint_every=3)
    _train(tmp_path, "full", cfg, ckpt="ckpt_full")
    _train_killed_after(tmp_path, 5, "resumed", cfg, ckpt="ckpt_resumed")
    assert not (tmp_path / "models" / "resumed").exists()
    assert len(list((tmp_path / "ckpt_resumed").glob("step-0000003-*.pt"))) == 1
    first = []
    _train(tmp_path, "resumed", cfg, ckpt="ckpt_resumed", on_step=first.append)
    assert first[0] == 4  # resumed after the step-3 checkpoint, not from scratch
    full, resumed = _weights(tmp_path / "models" / "full"), _weights(tmp_path / "models" / "resumed")
    for sub in full:
        assert full[sub].keys() == resumed[sub].keys()
        for key in full[sub]:
            assert torch.equal(full[sub][key], resumed[sub][key]), (sub, key)
    log_full = pd.read_csv(tmp_path / "models" / "full" / "train_log.csv")
    log_resumed = pd.read_csv(tmp_path / "models" / "resumed" / "train_log.csv")
    cols = ["step", "loss", "val_loss", "lr"]
    pd.testing.assert_frame_equal(log_full[cols], log_resumed[cols])


def test_checkpoint_of_another_config_is_not_resumed(tmp_path):
    _train(tmp_path, "a", tiny_train_cfg(steps=3, checkpoint_every=3))
    calls = []
    _train(tmp_path, "b", tiny_train_cfg(steps=3, checkpoint_every=3, p_uncond=0.2), on_step=calls.append)
    assert calls == [1, 2, 3]


def test_changed_pixels_train_afresh_instead_of_resuming(tmp_path):
    """The checkpoint key covers the packed pixels: a rebuilt array with other pixels (same manifest rows, same
    config) must not resume the old run's final checkpoint."""
    from biasdiff.manifest.build import write_manifest

    cfg = tiny_train_cfg(steps=3, checkpoint_every=3)
    _train(tmp_path, cfg=cfg)
    before = _weights(tmp_path / "models" / "m")
    m, a, c = write_inputs(tmp_path)
    pixels = np.load(a)
    pixels[:, 0, 0] ^= 0xFF  # one corner pixel of every image
    write_manifest(pd.read_parquet(m), pixels, m, a)
    calls = []
    trainer.train_ddpm(m, a, c, tmp_path / "models" / "m", tmp_path / "ckpt", cfg, SIZE, PROMPT_WORDS,
                       on_step=calls.append)
    assert calls == [1, 2, 3]
    after = _weights(tmp_path / "models" / "m")
    assert any(not torch.equal(before["unet"][k], after["unet"][k]) for k in before["unet"])


def test_pruning_never_deletes_the_new_checkpoint_among_another_configs_later_ones(tmp_path):
    """Config A leaves checkpoints at steps 4 and 6; config B (another seed) writes step 2 and is killed: B's step 2
    must survive pruning (A's are stale and go), and the rerun resumes from it."""
    _train(tmp_path, cfg=tiny_train_cfg(steps=6, checkpoint_every=2, keep_checkpoints=2))
    key_a = {p.name[13:] for p in (tmp_path / "ckpt").iterdir()}
    assert len(key_a) == 1

    class Killed(Exception):
        pass

    def kill_at_3(step):
        if step == 3:
            raise Killed

    cfg_b = tiny_train_cfg(steps=6, checkpoint_every=2, keep_checkpoints=2, seed=7)
    with pytest.raises(Killed):
        _train(tmp_path, cfg=cfg_b, on_step=kill_at_3)
    left = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert len(left) == 1 and left[0].startswith("step-0000002-") and left[0][13:] not in key_a
    calls = []
    _train(tmp_path, cfg=cfg_b, on_step=calls.append)
    assert calls[0] == 3


def test_truncated_weights_are_a_one_line_error_naming_the_file(tmp_path):
    _train(tmp_path, cfg=tiny_train_cfg(steps=2, checkpoint_every=2))
    weights = tmp_path / "models" / "m" / "unet_ema" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"unet_ema/diffusion_pytorch_model.safetensors.*forcerun train_ddpm") as err:
        load_model_dir(tmp_path / "models" / "m", ema=True, device="cpu")
    assert "\n" not in str(err.value)
    (tmp_path / "models" / "m" / "train_config.json").unlink()
    with pytest.raises(DataError, match="no train_config.json"):
        load_model_dir(tmp_path / "models" / "m", ema=True, device="cpu")


def test_outputs_layout_and_reload(tmp_path):
    result = _train(tmp_path)
    out = tmp_path / "models" / "m"
    for name in ("unet", "unet_ema", "scheduler", "train_config.json", "train_log.csv", "loss.png", "samples.png"):
        assert (out / name).exists(), name
    log = pd.read_csv(out / "train_log.csv")
    assert list(log.columns) == ["step", "loss", "val_loss", "lr", "images_per_s"]
    assert log["step"].tolist() == list(range(1, 7)) and log["val_loss"].notna().sum() == 2
    model, scheduler = load_model_dir(out, ema=True, device="cpu")
    assert model.cond_dim == 8 and scheduler.config.num_train_timesteps == 1000
    assert result["vocab"] == ["man", "nurse", "person", "woman"]
    raw, _ = load_model_dir(out, ema=False, device="cpu")
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), raw.parameters()))  # EMA differs from raw


def test_sample_grids_go_to_wandb_every_k_steps_and_the_final_one_is_drawn_once(tmp_path, monkeypatch):
    from PIL import Image

    drawn, logged = [], []

    class Run:
        def log(self, data, step):
            logged.extend(step for key in data if key == "ema_samples")

        def finish(self):
            pass

    def fake_grid(*args, **kwargs):
        drawn.append(1)
        return Image.new("RGB", (4, 4))

    monkeypatch.setattr(trainer, "_init_wandb", lambda *a, **k: Run())
    monkeypatch.setattr(trainer, "sample_grid", fake_grid)
    _train(tmp_path, cfg=tiny_train_cfg(grid={"every": 3, "n": 2, "steps": 2, "guidance_scale": 3.0, "eta": 1.0}))
    assert logged == [3, 6] and len(drawn) == 2  # step 6's grid is samples.png, not drawn twice
    assert (tmp_path / "models" / "m" / "samples.png").is_file()


def test_validation_loss_is_a_fixed_mean(tmp_path):
    m, a, c = write_inputs(tmp_path)
    from biasdiff.artifacts.conditioning import load_conditioning
    from biasdiff.artifacts.manifest import load_images
    from biasdiff.train.data import conditioning_matrix, select_split

    manifest, images = load_images(m, a)
    val = select_split(manifest, images, "val", PROMPT_WORDS)
    vocab, matrix = conditioning_matrix(load_conditioning(c), ["man", "nurse", "person", "woman"])
    torch.manual_seed(0)
    model = build_unet({"image_size": SIZE, "cond_dim": 8, "block_out_channels": [8, 16], "attention_resolutions": [],
                        "norm_num_groups": 4, "attention_head_dim": 8})
    ids = {w: i for i, w in enumerate(vocab)}
    args = (model, build_scheduler(), val, matrix, ids, 0)
    v1 = trainer.validation_loss(*args, batch_size=2, device=torch.device("cpu"))
    v2 = trainer.validation_loss(*args, batch_size=64, device=torch.device("cpu"))
    assert v1 == pytest.approx(v2, rel=1e-5)  # a true mean over all 9 (image, word) pairs, independent of batching


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    real = trainer.diffusion_loss
    calls = []

    def poisoned(*args):
        calls.append(1)
        loss = real(*args)
        return loss * float("nan") if len(calls) == 5 else loss

    monkeypatch.setattr(trainer, "diffusion_loss", poisoned)
    with pytest.raises(TrainingError, match="at step 5"):
        _train(tmp_path, cfg=tiny_train_cfg(steps=6, checkpoint_every=3))
    assert [p.name[:12] for p in (tmp_path / "ckpt").iterdir()] == ["step-0000003"]
    assert not (tmp_path / "models" / "m").exists()


def test_missing_conditioning_word_is_named(tmp_path):
    m, a, c = write_inputs(tmp_path, words_table=["man", "person", "woman"])
    with pytest.raises(DataError, match=r"\['nurse'\]"):
        trainer.train_ddpm(m, a, c, tmp_path / "o", tmp_path / "k", tiny_train_cfg(), SIZE, PROMPT_WORDS)


def test_undownsamplable_image_size_fails_before_training(tmp_path):
    cfg = tiny_train_cfg(unet={"block_out_channels": [8] * 5, "attention_resolutions": [], "norm_num_groups": 4})
    with pytest.raises(ConfigError, match="image_size: 8"):
        _train(tmp_path, cfg=cfg)
    assert not (tmp_path / "ckpt").exists()


def test_bf16_autocast_is_really_active(tmp_path, monkeypatch):
    import biasdiff.devices as devices

    monkeypatch.setattr(devices, "cpu_bf16_flags", lambda: ("avx512_bf16",))  # works (emulated) on any CPU
    assert autocast_dtype("auto", torch.device("cuda")) == torch.bfloat16
    seen = []
    real = trainer.diffusion_loss

    def spy(model, *args):
        module = model.module if hasattr(model, "module") else model
        handle = module.unet.conv_in.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
        try:
            return real(model, *args)
        finally:
            handle.remove()

    monkeypatch.setattr(trainer, "diffusion_loss", spy)
    _train(tmp_path, cfg=tiny_train_cfg(steps=1, precision="bf16"))
    assert seen == [torch.bfloat16]


@pytest.mark.parametrize("n_steps", [1, 2, 3, 10, 800])
@pytest.mark.parametrize("kind", ["onecycle", "cosine"])
def test_lr_schedule_builds_and_steps_for_any_length(kind, n_steps):
    """Short runs (benchmarks, smoke configs) used to hit OneCycleLR's division by (pct_start * total - 1) = 0."""
    from biasdiff.train.trainer import make_lr_scheduler

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = make_lr_scheduler(opt, {"type": kind, "warmup_fraction": 0.1}, n_steps)
    lrs = []
    for _ in range(n_steps):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert all(0 <= lr <= 1e-3 * (1 + 1e-9) for lr in lrs)
    if n_steps >= 10:
        assert max(lrs) == pytest.approx(1e-3, rel=0.05)  # the peak is reached, then it decays
        assert lrs[-1] < 0.5e-3


def test_sigterm_ends_the_step_saves_a_checkpoint_and_the_rerun_resumes(tmp_path):
    """A cluster's time limit (SIGTERM) or Snakemake passing on Ctrl-C: the step in flight finishes, a checkpoint is
    written at that step (not only at checkpoint_every), and the same call resumes after it."""
    import os
    import signal

    cfg = tiny_train_cfg(steps=6, checkpoint_every=5)

    def term_at_2(step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingError, match="stopped by SIGTERM after step 2 of 6.*resume"):
        _train(tmp_path, cfg=cfg, on_step=term_at_2)
    assert [p.name[:12] for p in (tmp_path / "ckpt").iterdir()] == ["step-0000002"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone after training
    calls = []
    _train(tmp_path, cfg=cfg, on_step=calls.append)
    assert calls == [3, 4, 5, 6]


def test_snapshot_steps_keep_the_ema_weights_of_that_step_through_a_resume(tmp_path):
    """The EMA weights kept at an intermediate step equal the EMA state the step-3 checkpoint holds (written by the
    checkpoint code, not the snapshot code), survive a kill and resume, and load with their hash checked."""
    cfg = tiny_train_cfg(steps=6, checkpoint_every=3, snapshot_steps=[3], keep_checkpoints=5)
    _train(tmp_path, "full", cfg, ckpt="ckpt_full")
    out = tmp_path / "models" / "full"
    snap, _ = load_model_dir(out, ema=True, device="cpu", snapshot=3)
    final, _ = load_model_dir(out, ema=True, device="cpu")
    state = torch.load(next((tmp_path / "ckpt_full").glob("step-0000003-*.pt")), weights_only=False)
    shadow = state["ema"]["shadow_params"]
    for p, q in zip(snap.parameters(), shadow):
        assert torch.equal(p, q)
    assert any(not torch.equal(p, q) for p, q in zip(snap.parameters(), final.parameters()))

    _train_killed_after(tmp_path, 5, "resumed", cfg, ckpt="ckpt_resumed")
    _train(tmp_path, "resumed", cfg, ckpt="ckpt_resumed")
    again, _ = load_model_dir(tmp_path / "models" / "resumed", ema=True, device="cpu", snapshot=3)
    for p, q in zip(snap.parameters(), again.parameters()):
        assert torch.equal(p, q)

    with pytest.raises(DataError, match=r"no EMA snapshot at step 4 .*step-0000003.*experiment.checkpoint_steps"):
        load_model_dir(out, ema=True, device="cpu", snapshot=4)
    weights = out / "snapshots" / "step-0000003" / "unet_ema" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    with pytest.raises(DataError, match="step-0000003/unet_ema/diffusion_pytorch_model.safetensors do not match"):
        load_model_dir(out, ema=True, device="cpu", snapshot=3)
