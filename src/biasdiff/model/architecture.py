"""Whether a word-conditioned UNet can be built for an image size: the keys of `train.unet` and their checks.
Light imports (no torch): the config check runs them before any job, `unet.py` again when it builds the model."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from biasdiff.errors import ConfigError

# Keys of a model config (the `train.unet` config section plus image_size and cond_dim).
UNET_KEYS = (
    "block_out_channels",
    "layers_per_block",
    "attention_resolutions",
    "attention_head_dim",
    "norm_num_groups",
    "mid_attention",
    "dropout",
    "cond_scale",
    "patch_size",
    "upsample_conv",
)


def block_resolutions(sample_size: int, n_blocks: int) -> list[int]:
    """Spatial size each down block works at: sample_size, sample_size/2, ... (one halving per block but the last)."""
    return [sample_size // 2**i for i in range(n_blocks)]


def check_unet_config(
    sample_size: int,
    block_out_channels: Sequence[int],
    attention_resolutions: Sequence[int],
    attention_head_dim: int,
    norm_num_groups: int,
    mid_attention: bool = True,
    patch_size: int = 1,
    layers_per_block: int | Sequence[int] = 1,
) -> None:
    """Raise ConfigError (one line, naming the key) if the UNet cannot be built for this image size. With
    `patch_size` p the blocks work on the (image_size / p)-pixel grid of patches."""
    if patch_size < 1 or sample_size % patch_size:
        raise ConfigError(f"config key train.unet.patch_size: {patch_size} must be at least 1 and divide image_size "
                          f"{sample_size}")
    sample_size //= patch_size
    n = len(block_out_channels)
    if n < 1:
        raise ConfigError("config key train.unet.block_out_channels: needs at least one entry, e.g. [32, 64, 128]")
    factor = 2 ** (n - 1)
    if sample_size % factor != 0 or sample_size // factor < 1:
        raise ConfigError(
            f"config key image_size: {sample_size} px cannot be halved {n - 1} times cleanly by a UNet with "
            f"{n} blocks (train.unet.block_out_channels={list(block_out_channels)}); use an image size divisible "
            f"by {factor} or fewer blocks"
        )
    for ch in block_out_channels:
        if ch % norm_num_groups != 0:
            raise ConfigError(
                f"config key train.unet.norm_num_groups: {norm_num_groups} does not divide block width {ch}; "
                f"use a divisor of every entry of {list(block_out_channels)}"
            )
    resolutions = block_resolutions(sample_size, n)
    for res in attention_resolutions:
        if res not in resolutions:
            raise ConfigError(
                f"config key train.unet.attention_resolutions: {res} px is not a block resolution at image_size "
                f"{sample_size}; valid: {resolutions}"
            )
    for ch, res in zip(block_out_channels, resolutions):
        if res in attention_resolutions and ch % attention_head_dim != 0:
            raise ConfigError(
                f"config key train.unet.attention_head_dim: {attention_head_dim} does not divide width {ch} of the "
                f"attention block at {res} px"
            )
    if mid_attention and (block_out_channels[-1] % attention_head_dim != 0):
        raise ConfigError(
            f"config key train.unet.attention_head_dim: {attention_head_dim} does not divide width "
            f"{block_out_channels[-1]} of the middle block's attention; use a divisor or set mid_attention: false"
        )
    level_layers(layers_per_block, block_out_channels)


def level_layers(layers_per_block: int | Sequence[int], block_out_channels: Sequence[int]) -> list[int]:
    """ResNet layers of each level's down block (its up block has one more): `layers_per_block` as a list per level.

    An int (at least 1) applies to every level. A list needs one entry per level; 0 is allowed where the level's
    width equals the width coming in (conv_in's for the first level, the previous level's otherwise), since the
    level's downsampler then takes that input as it is."""
    n = len(block_out_channels)
    if isinstance(layers_per_block, bool) or not isinstance(layers_per_block, (int, list, tuple)):
        raise ConfigError(f"config key train.unet.layers_per_block: {layers_per_block!r} must be an integer >= 1 or a "
                          f"list of {n} integers >= 0 (one per block_out_channels level)")
    if isinstance(layers_per_block, int):
        if layers_per_block < 1:
            raise ConfigError(f"config key train.unet.layers_per_block: {layers_per_block} must be at least 1 (or a "
                              f"list with one entry per level, where 0 is allowed)")
        return [layers_per_block] * n
    layers = list(layers_per_block)
    if len(layers) != n or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in layers):
        raise ConfigError(f"config key train.unet.layers_per_block: {layers} must have one integer >= 0 per level of "
                          f"block_out_channels {list(block_out_channels)} ({n} entries)")
    for i, count in enumerate(layers):
        if count == 0 and i > 0 and block_out_channels[i] != block_out_channels[i - 1]:
            raise ConfigError(f"config key train.unet.layers_per_block: level {i} has 0 layers but widens "
                              f"{block_out_channels[i - 1]} -> {block_out_channels[i]} channels; a level without "
                              "ResNets keeps the width it receives (0 is valid for level 0 or an equal-width level)")
    return layers


def check_train_unet(image_size: int, unet: Mapping[str, Any]) -> None:
    """`check_unet_config` for the `train.unet` config section (schema defaults filled) at `image_size`."""
    check_unet_config(int(image_size), [int(c) for c in unet["block_out_channels"]],
                      [int(r) for r in unet["attention_resolutions"]], int(unet["attention_head_dim"]),
                      int(unet["norm_num_groups"]), bool(unet["mid_attention"]), int(unet["patch_size"]),
                      unet["layers_per_block"])
