"""Fault injection on a finished smoke run: what a careless or unlucky user sees, and whether anything was lost.

    .venv/bin/python benchmarks/bench_faults.py [--workdir DIR]

Copies the workflow into a temporary directory, runs configs/smoke.yaml to the end, then for each case copies that
finished run, injects one fault, runs Snakemake as a user would and prints one markdown row: the case, the exit code,
the line the user is shown (the first error line, or what reran), and whether every earlier artifact is still there
and unchanged (or, where the fault is a legitimate change, whether the right things were recomputed). Also times
`snakemake -n` on the complete run. Numbers go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPY = ["Snakefile", "config.yaml", "rules", "scripts", "configs", "src", "envs", "report", "profiles"]
SMOKE = ["--configfile", "configs/smoke.yaml"]
MODEL = Path("results/models/default")
ERROR = re.compile(r"(ConfigError|DataError|TrainingError|WorkflowError|Exception|Error)\b.*")


def snakemake(workdir: Path, *args: str, timeout: float = 900) -> tuple[int, str, float]:
    tic = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, capture_output=True, text=True,
                         timeout=timeout)
    return out.returncode, out.stdout + out.stderr, time.perf_counter() - tic


def digests(workdir: Path) -> dict[str, str]:
    """sha256 of every artifact under results/ (logs and checkpoints excluded)."""
    found = {}
    for path in sorted((workdir / "results").rglob("*")):
        if path.is_file() and not {"logs", "checkpoints"} & set(path.relative_to(workdir).parts):
            found[str(path.relative_to(workdir))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def shown(output: str) -> str:
    """The line a user reads first: our one-line error, else Snakemake's, else the last line."""
    lines = output.splitlines()
    for i, line in enumerate(lines[:-1]):  # Snakemake: "ConfigError in file .../common.smk, line 16:" + message
        m = re.match(r"(\w+Error) in file .*, line \d+:$", line.strip())
        if m and lines[i + 1].strip():
            return f"{m.group(1)}: {lines[i + 1].strip()}"[:160]
    for pattern in (r"(ConfigError|DataError|TrainingError)[:(].*", r"biasdiff: .*", ERROR.pattern):
        m = re.search(pattern, output)
        if m:
            return m.group(0).strip()[:160]
    return output.strip().splitlines()[-1][:160] if output.strip() else ""


def overlay(workdir: Path, data: dict) -> list[str]:
    (workdir / "overlay.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return [*SMOKE, "overlay.yaml"]


def case_noise_std(w: Path, before: dict) -> tuple[int, str, str]:
    code, out, _ = snakemake(w, "--cores", "2", str(MODEL / "train_config.json"),
                             *overlay(w, {"synthesis": {"procedural": {"noise_std": 12.0}}}))
    log = (w / "results/logs/train_ddpm/default.log").read_text()
    key = str(MODEL / "unet/diffusion_pytorch_model.safetensors")
    fresh = "resuming" not in log and digests(w).get(key) != before[key]
    return code, "retrained from step 1 on the new pixels" if fresh else "RESUMED OLD CHECKPOINT", \
        "yes (model retrained)" if fresh else "NO"


def _corrupt(w: Path, offset: int, size: int) -> None:
    array = w / "results/manifest/images.npy"
    raw = bytearray(array.read_bytes())
    raw[offset : offset + size] = os.urandom(size)
    array.write_bytes(bytes(raw))


def case_pixels_8k(w: Path, before: dict) -> tuple[int, str, str]:
    _corrupt(w, 4096, 8192)
    code, out, _ = snakemake(w, "--cores", "2", *SMOKE)
    return code, shown(out), kept(w, before, "results/manifest/images.npy")


def case_pixels_50k(w: Path, before: dict) -> tuple[int, str, str]:
    _corrupt(w, 0, 50 * 1024)
    code, out, _ = snakemake(w, "--cores", "2", *SMOKE)
    return code, shown(out), kept(w, before, "results/manifest/images.npy")


def case_vectors_missing(w: Path, before: dict) -> tuple[int, str, str]:
    code, out, _ = snakemake(w, "--cores", "2", *overlay(w, {"embedding": {"source": {"kind": "file",
                                                                                         "path": "vectors.bin"}}}))
    return code, shown(out), kept(w, before)


def case_vectors_null(w: Path, before: dict) -> tuple[int, str, str]:
    code, out, _ = snakemake(w, "--cores", "2", *overlay(w, {"embedding": {"source": {"kind": "file", "path": None}}}))
    return code, shown(out), kept(w, before)


def case_unknown_word(w: Path, before: dict) -> tuple[int, str, str]:
    code, out, _ = snakemake(w, "--cores", "2", *overlay(w, {"prompts": {"man": {"words": ["man", "person",
                                                                                             "qzxvword"]}}}))
    return code, shown(out), kept(w, before)


def case_empty_prompts(w: Path, before: dict) -> tuple[int, str, str]:
    code, out, _ = snakemake(w, "--cores", "2", *overlay(w, {"prompts": {}}))
    return code, shown(out), kept(w, before)


def case_steps_and_epochs(w: Path, before: dict) -> tuple[int, str, str]:
    code, out, _ = snakemake(w, "--cores", "2", *overlay(w, {"train": {"epochs": 3}}))
    return code, shown(out), kept(w, before)


def case_yaml_config(w: Path, before: dict) -> tuple[int, str, str]:
    path = w / "config.yaml"
    path.write_text(path.read_text().replace("seed: 0", "seed: [0", 1))
    code, out, _ = snakemake(w, "--cores", "2")
    return code, shown(out), kept(w, before)


def case_yaml_overlay(w: Path, before: dict) -> tuple[int, str, str]:
    (w / "overlay.yaml").write_text("train:\n  steps: [4\n")
    code, out, _ = snakemake(w, "--cores", "2", *SMOKE, "overlay.yaml")
    check = subprocess.run([sys.executable, "-m", "biasdiff.config", "config.yaml", "configs/smoke.yaml",
                            "overlay.yaml"], cwd=w, capture_output=True, text=True, env={**os.environ,
                                                                                         "PYTHONPATH": "src"})
    return code, f"{shown(out)} / python -m biasdiff.config: {check.stderr.strip()[:90]}", kept(w, before)


def case_truncated_weights(w: Path, before: dict) -> tuple[int, str, str]:
    weights = w / MODEL / "unet_ema/diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:2048])
    code, out, _ = snakemake(w, "--cores", "2", *SMOKE)
    return code, shown(out), kept(w, before, str(MODEL / "unet_ema/diffusion_pytorch_model.safetensors"))


def case_sigint(w: Path, before: dict) -> tuple[int, str, str]:
    args = overlay(w, {"train": {"steps": 100000, "checkpoint_every": 100000, "seed": 5}})
    log = w / "results/logs/train_ddpm/default.log"
    log.unlink()
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", str(MODEL / "train_config.json"), "--cores", "2",
                             *args], cwd=w, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        while not (log.is_file() and "training default" in log.read_text()):
            time.sleep(0.5)
        time.sleep(3)
        tic = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
        stopped = time.perf_counter() - tic
    finally:  # never leave a 100000-step training behind
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    line = next((ln for ln in log.read_text().splitlines() if "stopped by" in ln), "no stop line")
    ckpts = sorted(p.name for p in (w / "results/checkpoints/default").glob("step-*.pt"))
    return code, f"stopped {stopped:.1f} s after SIGINT: {line.split(': ', 1)[-1][:100]}", \
        f"checkpoint {ckpts[-1][:12] if ckpts else 'NONE'} kept"


def case_stale_lock(w: Path, before: dict) -> tuple[int, str, str]:
    args = overlay(w, {"train": {"steps": 100000, "seed": 9}})
    log = w / "results/logs/train_ddpm/default.log"
    log.unlink()
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", str(MODEL / "train_config.json"), "--cores", "2",
                             *args], cwd=w, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    while not (log.is_file() and "training default" in log.read_text()):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job die without cleaning up: the lock stays
    proc.wait()
    code, out, _ = snakemake(w, "--cores", "2", str(MODEL / "train_config.json"), *args)
    return code, shown(out), kept(w, before, *[k for k in before if k.startswith(str(MODEL))])


def kept(workdir: Path, before: dict, *faulted: str) -> str:
    """Every earlier artifact (except the one the fault itself damaged) still there and byte-identical?"""
    after = digests(workdir)
    lost = [k for k, v in before.items() if k not in faulted and after.get(k) != v]
    return "yes" if not lost else f"NO: {len(lost)} changed/lost, e.g. {lost[0]}"


CASES = {
    "synthesis.procedural.noise_std 4 -> 12": case_noise_std,
    "8 KB of images.npy pixels overwritten": case_pixels_8k,
    "50 KB of garbage over images.npy (header too)": case_pixels_50k,
    "embedding.source.path names a missing file": case_vectors_missing,
    "embedding.source.path: null": case_vectors_null,
    "a conditioning word not in the vocabulary": case_unknown_word,
    "overlay with prompts: {}": case_empty_prompts,
    "train.epochs set beside train.steps": case_steps_and_epochs,
    "YAML syntax error in config.yaml": case_yaml_config,
    "YAML syntax error in an overlay": case_yaml_overlay,
    "unet_ema weights truncated to 2 KB": case_truncated_weights,
    "kill -INT to Snakemake during training": case_sigint,
    "kill -9 of Snakemake and its training job, then rerun": case_stale_lock,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temporary dir)")
    args = parser.parse_args()
    base = args.workdir or Path(tempfile.mkdtemp(prefix="bench_faults."))
    done = base / "done"
    if not (done / "results").is_dir():
        done.mkdir(parents=True, exist_ok=True)
        for name in COPY:
            src = ROOT / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, done / name)
        code, out, took = snakemake(done, "--cores", "2", *SMOKE, timeout=1800)
        assert code == 0, out[-3000:]
        print(f"smoke run: {took:.0f} s")
    times = [snakemake(done, "-n", "--cores", "1", *SMOKE)[2] for _ in range(3)]
    print(f"snakemake -n on the complete smoke run: {min(times):.2f} s (best of 3; {', '.join(f'{t:.2f}' for t in times)})")
    before = digests(done)
    print("\n| case | exit | what the user sees | nothing lost? |\n|---|---:|---|---|")
    for name, case in CASES.items():
        work = base / re.sub(r"\W+", "_", name)[:40]
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(done, work, symlinks=True)
        code, seen, lost = case(work, before)
        print(f"| {name} | {code} | {seen.replace('|', '/')} | {lost} |", flush=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
