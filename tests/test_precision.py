"""Precision: `auto` means bf16 autocast where the CPU has bf16 units (read from /proc/cpuinfo), fp32 elsewhere;
bf16 on a CPU without them is a one-line config error before any job; weights stay fp32 and every artifact records
what its forward passes ran in."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import biasdiff.devices as devices
import biasdiff.hardware as hardware
import biasdiff.train.trainer as trainer
from biasdiff.config import check_precisions
from biasdiff.errors import ConfigError
from biasdiff.model.sampling import sample_images
from biasdiff.model.unet import build_scheduler, build_unet, load_model_dir
from train_fixtures import PROMPT_WORDS, tiny_train_cfg, write_inputs

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
INTEL_SPR = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
ZEN3 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"


def test_bf16_units_are_read_from_cpuinfo(tmp_path):
    (tmp_path / "spr").write_text(INTEL_SPR + "\nprocessor\t: 1\nflags\t\t: fpu avx512_bf16 amx_bf16\n")
    (tmp_path / "zen3").write_text(ZEN3)
    assert hardware.cpu_bf16_flags(tmp_path / "spr") == ("amx_bf16", "avx512_bf16")
    assert hardware.cpu_bf16_flags(tmp_path / "zen3") == ()
    assert hardware.cpu_bf16_flags(tmp_path / "absent") == ()


@pytest.mark.parametrize("flags, precision, device, expected", [
    (("amx_bf16",), "auto", CPU, torch.bfloat16),
    (("avx512_bf16",), "auto", CPU, torch.bfloat16),
    ((), "auto", CPU, None),
    ((), "auto", CUDA, torch.bfloat16),
    ((), "fp32", CUDA, None),
    (("amx_bf16",), "fp32", CPU, None),
    (("amx_bf16",), "bf16", CPU, torch.bfloat16),
    ((), "bf16", CUDA, torch.bfloat16),
])
def test_precision_resolution_follows_the_cpu(monkeypatch, flags, precision, device, expected):
    monkeypatch.setattr(devices, "cpu_bf16_flags", lambda: flags)
    assert devices.autocast_dtype(precision, device, "sample.precision") == expected


def test_bf16_without_bf16_units_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(devices, "cpu_bf16_flags", lambda: ())
    with pytest.raises(ConfigError, match=r"^config key sample\.precision: bf16 needs .*valid here: auto \(= fp32\), fp32$"):
        devices.autocast_dtype("bf16", CPU, "sample.precision")
    with pytest.raises(ConfigError, match="not one of"):
        devices.autocast_dtype("half", CPU)
    # half-precision weights run as they are: no autocast on top
    monkeypatch.setattr(devices, "cpu_bf16_flags", lambda: ("amx_bf16",))
    assert devices.forward_precision("auto", CPU, torch.float16, "sample.precision") is None
    assert devices.forward_precision("auto", CPU, torch.float32, "sample.precision") == torch.bfloat16


@pytest.mark.parametrize("section, device", [("train", "cpu"), ("sample", "auto"), ("audit.classifier", "cpu"),
                                             ("scoredecomp", "auto"), ("fairface", "auto")])
def test_config_check_refuses_bf16_on_a_cpu_without_units_before_any_job(monkeypatch, section, device):
    monkeypatch.setattr(hardware, "cpu_bf16_flags", lambda: ())
    monkeypatch.setattr(hardware, "cuda_present", lambda: False)
    config: dict = {}
    node = config
    for part in section.split("."):
        node = node.setdefault(part, {})
    node.update({"precision": "bf16", "device": device})
    with pytest.raises(ConfigError, match=re.escape(f"config key {section}.precision: bf16 needs")):
        check_precisions(config)
    node["precision"] = "auto"
    check_precisions(config)  # auto is always valid
    node.update({"precision": "bf16", "device": "cuda"})
    check_precisions(config)  # a GPU job: the CPU's units do not matter
    monkeypatch.setattr(hardware, "cpu_bf16_flags", lambda: ("avx512_bf16",))
    node.update({"precision": "bf16", "device": device})
    check_precisions(config)


def test_a_bf16_trained_model_saves_fp32_weights_that_reload_and_sample(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "cpu_bf16_flags", lambda: ("avx512_bf16",))
    m, a, c = write_inputs(tmp_path)
    out = tmp_path / "models" / "m"
    trainer.train_ddpm(m, a, c, out, tmp_path / "ckpt", tiny_train_cfg(steps=3, precision="bf16"), 8, PROMPT_WORDS)
    record = json.loads((out / "train_config.json").read_text())
    assert record["precision"] == "bf16" and record["train"]["precision"] == "bf16"
    for sub in ("unet", "unet_ema"):
        weights = load_file(str(out / sub / "diffusion_pytorch_model.safetensors"))
        assert {w.dtype for w in weights.values()} == {torch.float32}
    model, scheduler = load_model_dir(out, device="cpu", dtype="float32")
    cond = np.ones(record["result"]["cond_dim"], np.float32)
    images = [sample_images(model, scheduler, cond, [1, 2], image_size=8, sampler="ddim", steps=3, amp=amp,
                            progress=False) for amp in (torch.bfloat16, torch.bfloat16, None)]
    assert images[0].shape == (2, 8, 8, 3) and images[0].dtype == np.uint8
    np.testing.assert_array_equal(images[0], images[1])  # deterministic in bf16 too
    # an fp32 checkpoint is not resumed by a bf16 run (the resolved precision is part of the checkpoint key)
    cfg = tiny_train_cfg(steps=3, precision="fp32")
    trainer.train_ddpm(m, a, c, tmp_path / "models" / "f", tmp_path / "ckpt", cfg, 8, PROMPT_WORDS)
    fp32 = json.loads((tmp_path / "models" / "f" / "train_config.json").read_text())
    assert fp32["precision"] == "fp32" and fp32["result"]["config_hash"] != record["result"]["config_hash"]


def test_samples_record_their_precision(tmp_path, monkeypatch):
    from biasdiff.sample.stage import draw_word

    monkeypatch.setattr(devices, "cpu_bf16_flags", lambda: ("amx_bf16",))
    torch.manual_seed(0)
    model = build_unet({"image_size": 8, "cond_dim": 4, "block_out_channels": [8, 16], "attention_resolutions": [],
                        "norm_num_groups": 4, "attention_head_dim": 8})
    params = {"device": "cpu", "dtype": "auto", "n": 2, "seed": 0, "sampler": "ddim", "steps": 2, "eta": 0.0,
              "guidance_scale": 2.0, "batch_size": 2, "use_ema": True}
    table = {"man": np.ones(4, np.float32)}
    _, meta = draw_word(model, build_scheduler(), table, "man", {**params, "precision": "auto"}, 8, progress=False)
    assert set(meta["precision"]) == {"bf16"}
    _, meta = draw_word(model, build_scheduler(), table, "man", {**params, "precision": "fp32"}, 8, progress=False)
    assert set(meta["precision"]) == {"fp32"}
    assert isinstance(meta, pd.DataFrame)
