"""The smoke run's synthesis and manifest artifacts (the shared run of tests/conftest.py). Invalidation after edits
(raising a count, unrelated changes) is tested in tests/test_invalidation.py."""

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.workflow


def test_manifest_counts_match_the_config(smoke_workdir):
    config = yaml.safe_load((smoke_workdir / "configs/smoke.yaml").read_text())
    manifest = pd.read_parquet(smoke_workdir / "results/manifest/images.parquet")
    expected = {name: spec["count"] for name, spec in config["prompts"].items()}
    assert manifest.groupby("prompt").size().to_dict() == expected
    array = np.load(smoke_workdir / "results/manifest/images.npy", mmap_mode="r")
    assert array.shape == (len(manifest), config["image_size"], config["image_size"], 3)
    for name, spec in config["prompts"].items():
        shards = sorted((smoke_workdir / "results/synth" / name).glob("shard-*.parquet"))
        assert len(shards) == -(-spec["count"] // spec["shard_size"])
        assert (smoke_workdir / f"results/manifest/contact_{name}.png").stat().st_size > 0


def test_every_job_logged(smoke_workdir):
    assert "manifest:" in (smoke_workdir / "results/logs/build_manifest.log").read_text()
    logs = list((smoke_workdir / "results/logs/synthesize").rglob("*.log"))
    assert logs and all("wrote" in p.read_text() for p in logs)
