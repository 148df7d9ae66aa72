"""The word-conditioned UNet: shapes, conditioning reaches the output, save/reload by path, config errors."""

import pytest
import torch
from diffusers import DDPMScheduler

from biasdiff.errors import ConfigError, DataError
from biasdiff.model.unet import WordConditionedUNet, build_scheduler, build_unet, load_model_dir

TINY = {"image_size": 16, "cond_dim": 8, "block_out_channels": [8, 16], "layers_per_block": 1,
        "attention_resolutions": [8], "attention_head_dim": 8, "norm_num_groups": 4}


def _inputs(b=3, size=16, dim=8):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(b, 3, size, size, generator=g) * 2 - 1, torch.tensor([0, 500, 999])[:b],
            torch.randn(b, dim, generator=g))


def test_forward_shape_and_scalar_timestep():
    torch.manual_seed(0)
    model = build_unet(TINY).eval()
    x, t, c = _inputs()
    assert model(x, t, c).shape == x.shape
    assert model(x, 10, c).shape == x.shape
    assert model.cond_dim == 8


def test_word_vector_changes_output_and_zero_is_null():
    torch.manual_seed(0)
    model = build_unet(TINY).eval()
    with torch.no_grad():
        model.cond_proj.weight.normal_()  # a trained-like projection
        x, t, c = _inputs()
        out_c = model(x, t, c)
        out_0 = model(x, t, torch.zeros_like(c))
        # the null condition is exactly the time-only UNet (bias-free projection adds nothing)
        ref = model.unet(x, t, class_labels=torch.zeros(3, model.unet.time_embedding.linear_2.out_features)).sample
    assert not torch.allclose(out_c, out_0)
    assert torch.equal(out_0, ref)


def test_cond_scale_multiplies_the_word_vector_and_round_trips(tmp_path):
    torch.manual_seed(0)
    scaled = build_unet({**TINY, "cond_scale": 4.0}).eval()
    plain = build_unet(TINY).eval()
    plain.load_state_dict(scaled.state_dict())
    x, t, c = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(scaled(x, t, c), plain(x, t, 4.0 * c))
        assert torch.equal(scaled(x, t, torch.zeros_like(c)), plain(x, t, torch.zeros_like(c)))  # null stays null
        scaled.save_pretrained(tmp_path / "m")
        again = WordConditionedUNet.from_pretrained(tmp_path / "m")
        assert again.config.cond_scale == 4.0
        assert torch.equal(again(x, t, c), scaled(x, t, c))


def test_saved_model_reloads_by_path_with_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = build_unet(TINY).eval()
    model.save_pretrained(tmp_path / "unet")
    model.save_pretrained(tmp_path / "unet_ema")
    build_scheduler().save_pretrained(tmp_path / "scheduler")
    (tmp_path / "train_config.json").write_text("{}\n")
    assert (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    loaded, scheduler = load_model_dir(tmp_path, ema=True, device="cpu")
    assert isinstance(loaded, WordConditionedUNet) and isinstance(scheduler, DDPMScheduler)
    assert scheduler.config.num_train_timesteps == 1000 and scheduler.config.beta_schedule == "linear"
    assert scheduler.config.prediction_type == "epsilon"
    x, t, c = _inputs()
    with torch.no_grad():
        assert torch.equal(model(x, t, c), loaded(x, t, c))


def test_missing_model_dir_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no train_config.json"):
        load_model_dir(tmp_path)
    (tmp_path / "train_config.json").write_text("{}\n")
    with pytest.raises(DataError, match="unet_ema"):
        load_model_dir(tmp_path)


@pytest.mark.parametrize(
    "override, match",
    [
        ({"block_out_channels": [8] * 6, "attention_resolutions": []}, "image_size: 16"),
        ({"attention_resolutions": [4]}, "attention_resolutions"),
        ({"norm_num_groups": 3}, "norm_num_groups"),
        ({"channels": 3}, "unknown key"),
        ({"attention_head_dim": 32, "attention_resolutions": []}, "middle block"),
        ({"patch_size": 3}, "patch_size"),
        ({"patch_size": 2, "attention_resolutions": [16]}, "attention_resolutions"),  # the patch grid: 8 and 4 px
    ],
)
def test_bad_unet_config_is_a_config_error(override, match):
    with pytest.raises(ConfigError, match=match):
        build_unet({**TINY, **override})


def test_cond_shape_mismatch_is_rejected():
    model = build_unet(TINY)
    x, t, _ = _inputs()
    with pytest.raises(ValueError, match="cond must have shape"):
        model(x, t, torch.zeros(3, 5))


def test_patches_are_pixels_stacked_as_channels_and_round_trip(tmp_path):
    """patch_size 2: the UNet sees each 2 x 2 patch's 12 values as channels of an 8 x 8 grid, and its output is put
    back pixel for pixel (checked against a hand-made space-to-depth of a known image)."""
    torch.manual_seed(0)
    model = build_unet({**TINY, "patch_size": 2, "attention_resolutions": [4]}).eval()
    assert model.unet.config.sample_size == 8 and model.unet.config.in_channels == 12
    x, t, c = _inputs()
    seen = []
    handle = model.unet.conv_in.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    with torch.no_grad():
        out = model(x, t, c)
    handle.remove()
    assert out.shape == x.shape
    patches = seen[0]  # (B, 12, 8, 8): channel ch*4 + dy*2 + dx holds pixel (2i + dy, 2j + dx) of colour ch
    for ch, dy, dx in [(0, 0, 0), (1, 0, 1), (2, 1, 0), (2, 1, 1)]:
        torch.testing.assert_close(patches[:, ch * 4 + dy * 2 + dx], x[:, ch, dy::2, dx::2])
    model.save_pretrained(tmp_path / "p2")
    again = WordConditionedUNet.from_pretrained(tmp_path / "p2")
    assert again.config.patch_size == 2
    with torch.no_grad():
        assert torch.equal(again(x, t, c), out)
