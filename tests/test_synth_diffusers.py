"""The diffusers synthesis backend, through a tiny random-weight pipeline saved to disk and loaded by path (no download)."""

import io

import numpy as np
import pytest
from PIL import Image

from biasdiff.errors import ConfigError, DataError
from biasdiff.synth.diffusers_backend import DiffusersSettings, load_pipeline
from biasdiff.synth.stage import image_seed, run_synthesis
from tiny_models import build_tiny_sd_pipeline


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def tiny_pipeline_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-sd")
    build_tiny_sd_pipeline(directory)
    return str(directory)


def _params(model, start=0, stop=3, **settings):
    base = {"model": model, "steps": 2, "guidance_scale": 7.5, "height": 32, "width": 32, "batch_size": 2, "device": "cpu"}
    base.update(settings)
    return {
        "prompt": "female_nurse",
        "text": "a female nurse in blue scrubs",
        "attributes": {"gender": "female", "occupation": "nurse"},
        "start": start,
        "stop": stop,
        "seed": 0,
        "backend": "diffusers",
        "store_size": 16,
        "settings": base,
    }


def test_shard_from_local_pipeline(tiny_pipeline_dir, tmp_path):
    df = run_synthesis({"shard": str(tmp_path / "s.parquet")}, _params(tiny_pipeline_dir))
    assert len(df) == 3
    assert (df["width"] == 16).all() and (df["model_id"] == tiny_pipeline_dir).all()
    assert df["seed"].tolist() == [image_seed(0, "female_nurse", i) for i in range(3)]


@pytest.mark.parametrize("scheduler", [None, "DPMSolverSDEScheduler"])
def test_each_image_depends_only_on_its_own_seed(tiny_pipeline_dir, tmp_path, scheduler):
    """Image 2 is the same whether generated in a batch of 3 or alone (one generator, and for SDE schedulers one Brownian
    tree, per image: no shared or random seeds)."""
    full = run_synthesis({"shard": str(tmp_path / "a.parquet")}, _params(tiny_pipeline_dir, 0, 3, batch_size=3, scheduler=scheduler))
    alone = run_synthesis({"shard": str(tmp_path / "b.parquet")}, _params(tiny_pipeline_dir, 2, 3, batch_size=1, scheduler=scheduler))
    # equal up to float round-off of batched kernels (bytes can differ by a grey level between batch sizes)
    pixels = [_decode(png) for png in full["png"]]
    assert np.abs(pixels[2] - _decode(alone["png"].iloc[0])).max() <= 2
    assert np.abs(pixels[1] - pixels[2]).max() > 20 and np.abs(pixels[0] - pixels[2]).max() > 20


def test_scheduler_swap_and_bad_scheduler(tiny_pipeline_dir):
    pipe = load_pipeline(DiffusersSettings(model=tiny_pipeline_dir, scheduler="EulerDiscreteScheduler", device="cpu"))
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    with pytest.raises(ConfigError, match="synthesis.diffusers.scheduler"):
        load_pipeline(DiffusersSettings(model=tiny_pipeline_dir, scheduler="NoSuchScheduler", device="cpu"))


def test_unloadable_model_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match="local pipeline directory"):
        load_pipeline(DiffusersSettings(model=str(tmp_path), device="cpu", local_files_only=True))
