"""The word-conditioned UNet: a diffusers `UNet2DModel` whose time embedding is shifted by the word vector.

Conditioning (the seed's design, in diffusers terms). The seed concatenated a sinusoidal time code with the
JL-projected word vector and fed the concatenation, through SiLU + Linear, to every resolution block. Here the
word vector `c` (B, cond_dim) goes through a bias-free linear map `W` (cond_dim -> time_embed_dim) and is ADDED
to the UNet's time embedding, `emb = MLP(time_code(t)) + W c`, which diffusers then feeds to every ResNet block
of every resolution (down, mid, up). A linear map of a concatenation is a sum of linear maps, so this is the
seed's concatenation followed by its first linear layer. Because `W` has no bias, the null condition (the zero
vector, used for classifier-free guidance) adds exactly nothing: the unconditional model is the time-only UNet.

Shapes: sample (B, 3, H, W) float in [-1, 1]; timestep (B,) long or a scalar; cond (B, cond_dim) float.
The output is the predicted noise eps_hat (B, 3, H, W). With `patch_size` p > 1 the UNet sees the image as
(B, 3 p², H/p, W/p) (pixel unshuffle; each p x p patch's pixels stacked as channels) and its output is shuffled back:
the full-resolution level's work moves into wider layers, which bf16 matmul units run faster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.models.unets.unet_2d_blocks import get_down_block, get_up_block
from diffusers.models.upsampling import Upsample2D
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from torch.nn import functional as F

from biasdiff.errors import ConfigError, DataError
from biasdiff.devices import resolve_device, resolve_dtype
from biasdiff.model.architecture import UNET_KEYS, block_resolutions, check_unet_config, level_layers
from biasdiff.model.directory import RETRAIN, verify_model_dir

class WordConditionedUNet(ModelMixin, ConfigMixin):
    """UNet2DModel + a bias-free projection of the word vector added to the time embedding (see module doc).

    `save_pretrained(dir)` / `WordConditionedUNet.from_pretrained(dir)` round-trip it (config.json + safetensors).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        sample_size: int = 32,
        cond_dim: int = 128,
        block_out_channels: Sequence[int] = (32, 64, 128),
        layers_per_block: int | Sequence[int] = 1,
        attention_resolutions: Sequence[int] = (8,),
        attention_head_dim: int = 32,
        norm_num_groups: int = 8,
        mid_attention: bool = True,
        dropout: float = 0.0,
        cond_scale: float = 1.0,
        in_channels: int = 3,
        out_channels: int = 3,
        patch_size: int = 1,
        upsample_conv: bool = True,
    ):
        super().__init__()
        check_unet_config(
            sample_size, block_out_channels, attention_resolutions, attention_head_dim, norm_num_groups, mid_attention,
            patch_size, layers_per_block,
        )
        inner = sample_size // patch_size  # the UNet works on patch_size x patch_size pixel patches stacked as channels
        resolutions = block_resolutions(inner, len(block_out_channels))
        attn = [res in attention_resolutions for res in resolutions]
        down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn)
        up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn))
        self.unet = UNet2DModel(
            sample_size=inner,
            in_channels=in_channels * patch_size**2,
            out_channels=out_channels * patch_size**2,
            block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block if isinstance(layers_per_block, int) else 1,
            down_block_types=down,
            up_block_types=up,
            attention_head_dim=attention_head_dim,
            norm_num_groups=norm_num_groups,
            add_attention=mid_attention,
            dropout=dropout,
            class_embed_type="identity",
        )
        time_embed_dim = block_out_channels[0] * 4
        if not isinstance(layers_per_block, int):
            self._set_level_layers(level_layers(layers_per_block, block_out_channels), down, up, time_embed_dim)
        if not upsample_conv:  # nearest-neighbour upsampling only; the next up block's first ResNet convolves
            for block in self.unet.up_blocks:
                if block.upsamplers is not None:
                    block.upsamplers = nn.ModuleList([Upsample2D(block.upsamplers[0].channels, use_conv=False)])
        self.cond_proj = nn.Linear(cond_dim, time_embed_dim, bias=False)

    def _set_level_layers(self, layers: list[int], down: tuple[str, ...], up: tuple[str, ...], temb: int) -> None:
        """Rebuild the blocks of the levels whose ResNet count is not 1 (what `self.unet` was built with), with the
        arguments UNet2DModel gave them (read from its config); up block i pops exactly the skips its down level
        pushed (layers + 1)."""
        u = self.unet.config
        widths = list(u.block_out_channels)
        n = len(widths)
        common = dict(temb_channels=temb, resnet_eps=u.norm_eps, resnet_act_fn=u.act_fn, resnet_groups=u.norm_num_groups,
                      attention_head_dim=u.attention_head_dim, resnet_time_scale_shift=u.resnet_time_scale_shift,
                      dropout=u.dropout)
        for i, count in enumerate(layers):
            if count == 1:
                continue
            self.unet.down_blocks[i] = get_down_block(
                down[i], num_layers=count, in_channels=widths[max(i - 1, 0)], out_channels=widths[i],
                add_downsample=i < n - 1, downsample_padding=u.downsample_padding, downsample_type=u.downsample_type,
                **common)
            j = n - 1 - i  # the up block of level i
            self.unet.up_blocks[j] = get_up_block(
                up[j], num_layers=count + 1, in_channels=widths[max(i - 1, 0)], out_channels=widths[i],
                prev_output_channel=widths[min(i + 1, n - 1)], add_upsample=i > 0, upsample_type=u.upsample_type,
                **common)

    @property
    def cond_dim(self) -> int:
        return int(self.config.cond_dim)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int, cond: torch.Tensor) -> torch.Tensor:
        """eps_hat (B, 3, H, W) for noisy `sample` (B, 3, H, W) at `timestep` (B,) or scalar under `cond` (B, cond_dim)."""
        if cond.ndim != 2 or cond.shape[0] != sample.shape[0] or cond.shape[1] != self.cond_dim:
            raise ValueError(
                f"cond must have shape ({sample.shape[0]}, {self.cond_dim}) to match the batch; got {tuple(cond.shape)}"
            )
        shift = self.cond_proj(cond.to(self.cond_proj.weight.dtype) * self.config.cond_scale)
        p = self.config.patch_size
        if p == 1:
            return self.unet(sample, timestep, class_labels=shift, return_dict=False)[0]
        out = self.unet(F.pixel_unshuffle(sample, p), timestep, class_labels=shift, return_dict=False)[0]
        return F.pixel_shuffle(out, p)


def build_unet(model_cfg: Mapping[str, Any]) -> WordConditionedUNet:
    """A freshly initialised WordConditionedUNet from a model config.

    `model_cfg` holds `image_size` (or `sample_size`), `cond_dim`, and any of UNET_KEYS (the `train.unet` config
    section); missing UNet keys take the class defaults. Raises ConfigError if the image size cannot be downsampled
    cleanly or another key is inconsistent.
    """
    cfg = dict(model_cfg)
    size = cfg.pop("image_size", None) or cfg.pop("sample_size", None)
    if size is None:
        raise ConfigError("model config needs image_size (the training resolution in px)")
    cond_dim = cfg.pop("cond_dim", 128)
    unknown = sorted(set(cfg) - set(UNET_KEYS))
    if unknown:
        raise ConfigError(f"config key train.unet: unknown key(s) {unknown}; valid keys are {sorted(UNET_KEYS)}")
    for key in ("block_out_channels", "attention_resolutions"):
        if key in cfg:
            cfg[key] = tuple(int(v) for v in cfg[key])
    if isinstance(cfg.get("layers_per_block"), tuple):
        cfg["layers_per_block"] = list(cfg["layers_per_block"])  # config.json stores a list
    return WordConditionedUNet(sample_size=int(size), cond_dim=int(cond_dim), **cfg)


def build_scheduler(scheduler_cfg: Mapping[str, Any] | None = None) -> DDPMScheduler:
    """DDPMScheduler for training: linear beta 1e-4 -> 0.02, T = 1000, epsilon prediction (overridable by config)."""
    cfg = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear"}
    cfg.update(scheduler_cfg or {})
    return DDPMScheduler(**cfg, prediction_type="epsilon", clip_sample=True)


def load_model_dir(
    path: str | Path, ema: bool = True, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto",
    snapshot: int | None = None,
) -> tuple[WordConditionedUNet, DDPMScheduler]:
    """Load a trained model directory `results/models/{model}/` -> (model in eval mode, its DDPMScheduler).

    `ema=True` loads `unet_ema/` (the weights to sample from), else `unet/` (the raw trained weights). The directory
    is checked first (`verify_model_dir`): a missing, changed or unreadable file is a one-line DataError.
    `snapshot`: load the EMA weights kept at that intermediate training step instead (train.snapshot_steps).
    """
    path = Path(path)
    sub = verify_model_dir(path, ema, snapshot=snapshot)  # one-line errors for a missing, changed or unreadable file
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    torch_dtype = dtype if isinstance(dtype, torch.dtype) else resolve_dtype(dtype, dev)
    try:
        model = WordConditionedUNet.from_pretrained(sub, torch_dtype=torch_dtype)
        scheduler = DDPMScheduler.from_pretrained(path / "scheduler")
    except (OSError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot load the model in {sub} ({first}); {RETRAIN}") from exc
    model.to(dev).eval()
    return model, scheduler
