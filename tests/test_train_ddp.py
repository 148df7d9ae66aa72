"""Data-parallel training: 2 CPU processes (gloo, launched through torch.distributed.run + accelerate) follow the
single-process loss curve and leave one coherent model directory and checkpoint set."""

import pandas as pd
import torch
from safetensors.torch import load_file

from biasdiff.train.launch import run_train
from biasdiff.model.unet import load_model_dir
from train_fixtures import PROMPT_WORDS, tiny_train_cfg, write_inputs


def test_two_cpu_processes_match_one(tmp_path):
    m, a, c = write_inputs(tmp_path)
    # fp32: the check is that only the float reduction order differs (bf16 autocast, `auto` on CPUs with bf16 units,
    # would add its own rounding, ~1e-3 relative, on top)
    cfg = tiny_train_cfg(steps=4, checkpoint_every=2, val_every=2, precision="fp32")
    common = dict(manifest_path=m, array_path=a, conditioning_path=c, settings=cfg, image_size=8,
                  prompt_words=PROMPT_WORDS)
    one = run_train(1, out_dir=tmp_path / "one", checkpoint_dir=tmp_path / "ck1", **common)
    two = run_train(2, out_dir=tmp_path / "two", checkpoint_dir=tmp_path / "ck2", **common)
    assert two["num_processes"] == 2 and one["num_processes"] == 1
    log1 = pd.read_csv(tmp_path / "one" / "train_log.csv")
    log2 = pd.read_csv(tmp_path / "two" / "train_log.csv")
    assert log1["step"].tolist() == log2["step"].tolist() == [1, 2, 3, 4]
    # same examples, t, noise and dropout per step; only float reduction order differs
    pd.testing.assert_series_equal(log1["loss"], log2["loss"], rtol=1e-4)
    pd.testing.assert_series_equal(log1["val_loss"], log2["val_loss"], rtol=1e-4)
    assert sorted(p.name[:12] for p in (tmp_path / "ck2").iterdir()) == ["step-0000002", "step-0000004"]
    w1 = load_file(tmp_path / "one" / "unet" / "diffusion_pytorch_model.safetensors")
    w2 = load_file(tmp_path / "two" / "unet" / "diffusion_pytorch_model.safetensors")
    assert w1.keys() == w2.keys()
    for key in w1:
        torch.testing.assert_close(w1[key], w2[key], rtol=1e-3, atol=1e-5)
    model, _ = load_model_dir(tmp_path / "two", device="cpu")
    assert model.cond_dim == 8
