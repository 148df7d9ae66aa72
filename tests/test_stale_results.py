"""Nothing stale ever looks current: each fault a careless or unlucky user causes on a finished smoke run is either
recomputed from the new inputs or stopped before any job runs with one line that says what to do -- and loses no
earlier artifact."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
import yaml

from workflow_run import snakemake

pytestmark = pytest.mark.workflow

MODEL = Path("results/models/default")


def _overlay(workdir: Path, data: dict, name: str = "overlay.yaml") -> str:
    (workdir / name).write_text(yaml.safe_dump(data, sort_keys=False))
    return name


def _run(workdir: Path, *args: str) -> tuple[int, str]:
    """Snakemake with exactly the --configfile arguments given (none: config.yaml alone)."""
    out = snakemake(workdir, *args, "--cores", "2", smoke=False)
    return out.returncode, out.stdout + out.stderr


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _kill_session(proc) -> None:
    """SIGKILL a process started with start_new_session=True and everything in its session (its jobs)."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def test_changed_synthesis_retrains_from_the_new_pixels(copy_workdir):
    workdir = copy_workdir()
    weights = workdir / MODEL / "unet" / "diffusion_pytorch_model.safetensors"
    before = _sha(weights)
    overlay = _overlay(workdir, {"synthesis": {"procedural": {"noise_std": 12.0}}})
    code, out = _run(workdir, str(MODEL / "train_config.json"), "--configfile", "configs/smoke.yaml", overlay)
    assert code == 0, out[-3000:]
    log = (workdir / "results/logs/train_ddpm/default.log").read_text()
    assert "resuming from checkpoint" not in log
    assert _sha(weights) != before


def test_overwritten_pixels_stop_the_run_before_any_job_and_keep_the_model(copy_workdir):
    workdir = copy_workdir()
    array = workdir / "results/manifest/images.npy"
    raw = bytearray(array.read_bytes())
    raw[4096 : 4096 + 8192] = os.urandom(8192)
    array.write_bytes(bytes(raw))
    code, out = _run(workdir, "--configfile", "configs/smoke.yaml")
    assert code != 0, out[-2000:]
    assert "images.npy does not match the content hash" in out and "--forcerun build_manifest" in out
    assert (workdir / MODEL / "unet_ema").is_dir() and (workdir / MODEL / "train_config.json").is_file()
    forced = snakemake(workdir, "--dry-run", "--cores", "1", "--forcerun", "build_manifest")
    assert forced.returncode == 0 and "build_manifest" in forced.stdout


def test_missing_vectors_file_is_an_error_not_nothing_to_be_done(copy_workdir):
    workdir = copy_workdir()
    for path in ("no/such/vectors.bin", None):
        overlay = _overlay(workdir, {"embedding": {"source": {"kind": "file", "path": path}}})
        code, out = _run(workdir, "--dry-run", "--configfile", "configs/smoke.yaml", overlay)
        assert code != 0 and "embedding.source.path" in out and "Nothing to be done" not in out


def test_a_word_missing_from_the_vocabulary_is_named_before_any_job(copy_workdir):
    workdir = copy_workdir()
    overlay = _overlay(workdir, {"prompts": {"man": {"words": ["man", "person", "qzxvword"]}}})
    code, out = _run(workdir, "--dry-run", "--configfile", "configs/smoke.yaml", overlay)
    assert code != 0 and "prompts.man.words: ['qzxvword'] not in the vocabulary" in out


def test_overlays_remove_prompts_only_through_prompts_only(copy_workdir):
    workdir = copy_workdir()
    code, out = _run(workdir, "--dry-run", "--configfile", "configs/smoke.yaml", _overlay(workdir, {"prompts": {}}))
    assert code != 0 and "prompts_only" in out
    keep = _overlay(workdir, {"prompts_only": ["man", "woman"], "experiment": {"enabled": False}}, "two.yaml")
    out = snakemake(workdir, "--dry-run", "--cores", "1", "--configfile", "configs/smoke.yaml", keep, smoke=False)
    assert out.returncode == 0, out.stderr[-3000:]
    shards = {line.split("prompt=")[1].split(",")[0] for line in out.stdout.splitlines() if "prompt=" in line}
    assert shards <= {"man", "woman"}  # the two kept prompts' shards exist already: no synthesis of others
    assert "build_manifest" in out.stdout  # the manifest of two prompts is new


def test_a_yaml_error_in_config_yaml_names_file_and_line(copy_workdir):
    workdir = copy_workdir()
    text = (workdir / "config.yaml").read_text()
    (workdir / "config.yaml").write_text(text.replace("seed: 0", "seed: [0", 1))
    code, out = _run(workdir, "--dry-run")
    assert code != 0 and "config.yaml:" in out and "YAML syntax error" in out


def test_artifacts_are_readable_by_the_group(smoke_workdir):
    """mkstemp's 0600 used to reach every artifact; the smoke run's umask (022 here) must decide instead."""
    files = [p for p in (smoke_workdir / "results").rglob("*") if p.is_file() and "logs" not in p.parts]
    assert files
    unreadable = [str(p) for p in files if not p.stat().st_mode & stat.S_IRGRP]
    assert not unreadable, unreadable[:5]


def test_interrupting_snakemake_alone_stops_training_with_a_checkpoint(copy_workdir):
    """`kill -INT` to the Snakemake process (not its process group): the training job is told to stop (SIGTERM),
    saves a checkpoint at its current step and ends, instead of running on after Snakemake says it is terminating."""
    import signal
    import subprocess
    import sys
    import time

    workdir = copy_workdir()
    # (the experiment's snapshot at step 2 is not a checkpoint of this training: the design is switched off)
    overlay = _overlay(workdir, {"train": {"steps": 100000, "checkpoint_every": 100000, "seed": 5},
                                 "experiment": {"enabled": False}})
    log = workdir / "results/logs/train_ddpm/default.log"
    log.unlink()
    # Its own session, so that whatever happens the test can end Snakemake *and* its job (an orphaned 100000-step
    # training would eat the machine); SIGINT itself goes to the Snakemake process alone.
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", str(MODEL / "train_config.json"), "--cores", "2", "--configfile",
         "configs/smoke.yaml", overlay], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (log.is_file() and "training default" in log.read_text()):
            time.sleep(0.5)
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("Snakemake did not stop within 60 s of SIGINT")
    finally:
        _kill_session(proc)
    assert proc.returncode != 0
    assert "stopped by SIGTERM" in log.read_text()
    assert list((workdir / "results/checkpoints/default").glob("step-*.pt")), out[-2000:]


def test_a_lock_left_by_a_killed_run_says_unlock_is_safe(copy_workdir):
    """kill -9 of a running Snakemake (and its job) leaves its lock; the next run's lock error comes with the
    workflow's word that no Snakemake runs here any more, i.e. that --unlock is safe."""
    import subprocess
    import sys
    import time

    workdir = copy_workdir()
    args = ["--configfile", "configs/smoke.yaml", _overlay(workdir, {"train": {"steps": 100000, "seed": 9}})]
    log = workdir / "results/logs/train_ddpm/default.log"
    log.unlink()
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", str(MODEL / "train_config.json"), "--cores", "2",
                             *args], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (log.is_file() and "training default" in log.read_text()):
            time.sleep(0.5)
    finally:
        _kill_session(proc)  # kill -9 of Snakemake and its job: the lock stays behind
    assert any((workdir / ".snakemake/locks").iterdir())
    code, out = _run(workdir, str(MODEL / "train_config.json"), *args)
    assert code != 0 and "no Snakemake process runs in" in out and "--unlock` is safe" in out


def test_truncated_weights_stop_the_run_instead_of_looking_current(copy_workdir):
    workdir = copy_workdir()
    weights = workdir / MODEL / "unet_ema" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:2048])
    code, out = _run(workdir, "--dry-run", "--configfile", "configs/smoke.yaml")
    assert code != 0 and "Nothing to be done" not in out
    assert "unet_ema/diffusion_pytorch_model.safetensors do not match" in out and "--forcerun train_ddpm" in out
    forced = snakemake(workdir, "--dry-run", "--cores", "1", "--forcerun", "train_ddpm")
    assert forced.returncode == 0 and "train_ddpm" in forced.stdout
