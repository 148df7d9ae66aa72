"""The model-directory contract: `results/models/{model}/` holds unet/, unet_ema/, scheduler/ and train_config.json,
whose `result.weights_sha256` records the content hash of each weights file. `verify_model_dir` checks it before
anything loads from it (and the workflow checks it while building the DAG). Light imports only."""

from __future__ import annotations

import json
from pathlib import Path

from biasdiff.errors import DataError
from biasdiff.io import file_sha256

WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
RETRAIN = "retrain it: snakemake --forcerun train_ddpm"


def model_dir_of(train_config_path: str | Path) -> Path:
    """The model directory of its train_config.json (the file rules name as a model's input and output):
    results/models/{model}/train_config.json -> results/models/{model}/."""
    return Path(train_config_path).parent


def snapshot_subdir(step: int) -> str:
    """The EMA weights the trainer kept at an intermediate `step` (train.snapshot_steps), relative to the model
    directory: snapshots/step-0000400/unet_ema."""
    return f"snapshots/step-{int(step):07d}/unet_ema"


def verify_model_dir(path: str | Path, ema: bool = True, snapshot: int | None = None) -> Path:
    """Check a model directory before anything loads from it; returns the weights subdirectory to load.

    train_config.json must be present and readable, the weights file present, and -- when train_config.json records
    content hashes of the weights (every model the trainer writes) -- byte-identical to what was written. Each
    failure is a one-line DataError naming the file and the rule to rerun.
    """
    path = Path(path)
    config_file = path / "train_config.json"
    try:
        record = json.loads(config_file.read_text())
    except FileNotFoundError:
        raise DataError(f"model directory {path} has no train_config.json (training did not finish); {RETRAIN}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{config_file} is unreadable ({type(exc).__name__}); {RETRAIN}") from exc
    sub = path / ("unet_ema" if ema else "unet")
    if snapshot is not None:
        sub = path / snapshot_subdir(snapshot)
        if not (sub / "config.json").is_file():
            kept = sorted(p.name for p in (path / "snapshots").glob("step-*")) if (path / "snapshots").is_dir() else []
            raise DataError(f"model directory {path} has no EMA snapshot at step {snapshot} (has {kept or 'none'}); "
                            f"list the step in experiment.checkpoint_steps and {RETRAIN}")
    for needed in (sub, path / "scheduler"):
        if not (needed / "config.json").is_file() and not (needed / "scheduler_config.json").is_file():
            raise DataError(f"model directory {path} has no {needed.name}/ (expected unet/, unet_ema/, scheduler/); {RETRAIN}")
    weights = sub / WEIGHTS_FILE
    if not weights.is_file():
        raise DataError(f"model weights {weights} are missing; {RETRAIN}")
    recorded = ((record.get("result") or {}).get("weights_sha256") or {}) if isinstance(record, dict) else {}
    expected = recorded.get(f"{sub.relative_to(path).as_posix()}/{WEIGHTS_FILE}")
    if expected is not None and file_sha256(weights) != expected:
        raise DataError(f"model weights {weights} do not match the content hash recorded in {config_file} (changed or "
                        f"truncated after training); {RETRAIN}")
    return sub


def weights_hashes(path: str | Path) -> dict[str, str]:
    """SHA-256 of each weights file of a model directory, keyed `unet/...safetensors`, for train_config.json."""
    path = Path(path)
    subs = ["unet", "unet_ema", *sorted(p.parent.relative_to(path).as_posix()
                                        for p in path.glob(f"snapshots/step-*/unet_ema/{WEIGHTS_FILE}"))]
    return {f"{sub}/{WEIGHTS_FILE}": file_sha256(path / sub / WEIGHTS_FILE) for sub in subs
            if (path / sub / WEIGHTS_FILE).is_file()}
