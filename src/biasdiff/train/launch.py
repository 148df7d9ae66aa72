"""Run training in one process, or data-parallel in several (one per GPU; gloo on CPU) through accelerate.

With `num_processes > 1` the arguments are written to a JSON file and `python -m torch.distributed.run
--standalone --nproc_per_node N -m biasdiff.train.launch <json>` starts the workers; each builds an
`accelerate.Accelerator`, which reads the launcher's environment (RANK, WORLD_SIZE, LOCAL_RANK) and picks NCCL on
GPUs or gloo on CPUs. Worker output goes to this process's logger; a failing worker is a TrainingError.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from biasdiff.errors import TrainingError

log = logging.getLogger(__name__)


def run_train(num_processes: int = 1, **kwargs: Any) -> dict[str, Any]:
    """Stage entry point (rule train_ddpm): `biasdiff.train.trainer.train_ddpm(**kwargs)` in `num_processes` processes; returns its summary dict."""
    if num_processes <= 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from biasdiff.train.trainer import train_ddpm

        return train_ddpm(**kwargs)
    with tempfile.TemporaryDirectory(prefix="biasdiff-train-") as tmp:
        spec = Path(tmp) / "args.json"
        spec.write_text(json.dumps({k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in kwargs.items()},
                                   default=str))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={num_processes}",
               "-m", "biasdiff.train.launch", str(spec)]
        log.info("launching %d training processes: %s", num_processes, " ".join(cmd))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        tail: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            log.info("[workers] %s", line)
            tail = (tail + [line])[-5:]
        if proc.wait() != 0:
            raise TrainingError(f"data-parallel training with {num_processes} processes failed (exit {proc.returncode}): "
                                + " | ".join(tail))
        out = Path(kwargs["out_dir"]) / "train_config.json"
        return json.loads(out.read_text())["result"]


def _worker(spec_path: str) -> None:
    from biasdiff.logs import setup_logging
    from biasdiff.train.trainer import train_ddpm

    setup_logging(None)
    kwargs = json.loads(Path(spec_path).read_text())
    train_ddpm(**kwargs)


if __name__ == "__main__":
    _worker(sys.argv[1])
