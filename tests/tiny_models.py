"""Tiny random-weight models built from configs (no download), for tests of the code paths that load real ones.

- `tiny_clip_tokenizer()`: a character-level CLIP BPE tokenizer (every byte-level symbol, with and without `</w>`, no merges).
- `tiny_sd_pipeline(...)`: a StableDiffusionPipeline (UNet2DConditionModel, AutoencoderKL, CLIPTextModel, a scheduler) small
  enough to run 2 steps at 32 px in well under a second; `build_tiny_sd_pipeline(dir, ...)` also saves it (save_pretrained), so
  the code under test loads it by path like a real model.
- `tiny_clip()`: a CLIPModel and CLIPProcessor for zero-shot labelling code paths.
"""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_clip_tokenizer(model_max_length: int = 77):
    """A CLIPTokenizer over single byte-level symbols: tokenizes any text offline, one token per character."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(symbol, len(vocab))
        vocab.setdefault(symbol + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def tiny_sd_pipeline(prediction_type: str = "epsilon", scheduler_cls=None, sample_size: int = 32, text_width: int = 32):
    """A StableDiffusionPipeline with random weights: images of `sample_size` px, latents of half that."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=text_width,
            intermediate_size=2 * text_width,
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
        cross_attention_dim=text_width,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    scheduler = (scheduler_cls or DDIMScheduler)(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        prediction_type=prediction_type,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_tiny_sd_pipeline(directory: str | Path, prediction_type: str = "epsilon", **kwargs):
    """`tiny_sd_pipeline(...)`, saved to `directory` with save_pretrained; returns the pipeline."""
    pipe = tiny_sd_pipeline(prediction_type, **kwargs)
    pipe.save_pretrained(Path(directory))
    return pipe


def tiny_clip(image_size: int = 32):
    """(CLIPModel in eval mode, CLIPProcessor) with random weights, for zero-shot labelling code paths."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = tiny_clip_tokenizer()
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=image_size, patch_size=8
        ),
        projection_dim=16,
    )
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
        ),
        tokenizer=tokenizer,
    )
    return model, processor
