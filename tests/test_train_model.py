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
        ({"layers_per_block": 0}, "layers_per_block"),
        ({"layers_per_block": [1]}, "layers_per_block"),  # one entry for two levels
        ({"layers_per_block": [1, -1]}, "layers_per_block"),
        ({"layers_per_block": [1, 0]}, "widens 8 -> 16"),  # level 1 without ResNets cannot widen 8 -> 16 channels
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


def test_per_level_layers_wire_each_up_block_to_its_own_levels_skips(tmp_path):
    """layers_per_block [0, 2]: no ResNet at 16 px (the level is conv_in, then the downsampler), two at 8 px; the up
    blocks get one more each. The 16-px up block's single ResNet must see conv_in's output as its skip (the level
    pushed nothing else), and the saved config rebuilds the same network."""
    torch.manual_seed(0)
    model = build_unet({**TINY, "layers_per_block": [0, 2]}).eval()
    assert [len(b.resnets) for b in model.unet.down_blocks] == [0, 2]
    assert [len(b.resnets) for b in model.unet.up_blocks] == [3, 1]
    seen = {}
    hooks = [model.unet.conv_in.register_forward_hook(lambda m, i, o: seen.__setitem__("conv_in", o)),
             model.unet.up_blocks[1].resnets[0].register_forward_pre_hook(lambda m, i: seen.__setitem__("last", i[0]))]
    x, t, c = _inputs()
    with torch.no_grad():
        out = model(x, t, c)
    for h in hooks:
        h.remove()
    assert out.shape == x.shape
    # the last ResNet's input: 16 upsampled channels from the 8-px level, then the 8 skip channels of conv_in
    assert seen["last"].shape == (3, 16 + 8, 16, 16)
    torch.testing.assert_close(seen["last"][:, 16:], seen["conv_in"])
    model.save_pretrained(tmp_path / "m")
    again = WordConditionedUNet.from_pretrained(tmp_path / "m")
    assert list(again.config.layers_per_block) == [0, 2]
    with torch.no_grad():
        assert torch.equal(again(x, t, c), out)


def test_an_int_and_a_list_of_ones_build_the_same_network():
    torch.manual_seed(0)
    a = build_unet({**TINY, "layers_per_block": 1})
    torch.manual_seed(0)
    b = build_unet({**TINY, "layers_per_block": [1, 1]})
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_upsample_without_conv_is_nearest_neighbour(tmp_path):
    """upsample_conv false: the upsampler has no weights and doubles each pixel (checked against repeat_interleave)."""
    torch.manual_seed(0)
    model = build_unet({**TINY, "upsample_conv": False}).eval()
    up = model.unet.up_blocks[0].upsamplers[0]
    assert list(up.parameters()) == []
    with_conv = build_unet(TINY)
    n_conv = sum(p.numel() for p in with_conv.unet.up_blocks[0].upsamplers[0].parameters())
    assert n_conv == 16 * 16 * 9 + 16  # the 3x3 conv the default keeps
    assert sum(p.numel() for p in with_conv.parameters()) - sum(p.numel() for p in model.parameters()) == n_conv
    seen = []
    handle = up.register_forward_hook(lambda m, i, o: seen.append((i[0], o)))
    x, t, c = _inputs()
    with torch.no_grad():
        out = model(x, t, c)
    handle.remove()
    inp, res = seen[0]
    torch.testing.assert_close(res, inp.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))
    model.save_pretrained(tmp_path / "m")
    with torch.no_grad():
        assert torch.equal(WordConditionedUNet.from_pretrained(tmp_path / "m")(x, t, c), out)
