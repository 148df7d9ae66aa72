"""Tiny random-weight models built from configs (no download), saved to disk and reloaded by path like real ones.

- `write_tiny_clip_tokenizer(dir)`: a character-level CLIP BPE vocabulary (every byte-level symbol, with and without `</w>`,
  no merges), so `CLIPTokenizer.from_pretrained(dir)` works offline.
- `build_tiny_sd_pipeline(dir, prediction_type)`: a StableDiffusionPipeline (UNet2DConditionModel, AutoencoderKL, CLIPTextModel,
  DDIM scheduler) small enough to run 2 steps at 32 px in well under a second.
"""

from __future__ import annotations

from pathlib import Path


def write_tiny_clip_tokenizer(directory: str | Path, model_max_length: int = 77):
    """Save a character-level CLIPTokenizer (byte-level alphabet, no merges) to `directory` and return it reloaded."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    directory = Path(directory)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(symbol, len(vocab))
        vocab.setdefault(symbol + "</w>", len(vocab))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)
    tokenizer.save_pretrained(directory)
    return CLIPTokenizer.from_pretrained(directory)


def build_tiny_sd_pipeline(directory: str | Path, prediction_type: str = "epsilon", sample_size: int = 32):
    """Assemble, save (save_pretrained) and return a tiny StableDiffusionPipeline with random weights."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    directory = Path(directory)
    torch.manual_seed(0)
    tokenizer = write_tiny_clip_tokenizer(directory / "_tokenizer_src")
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=sample_size,
    )
    unet = UNet2DConditionModel(
        sample_size=sample_size // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(directory)
    return pipe
