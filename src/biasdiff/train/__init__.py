"""Stage 4: a word-conditioned DDPM trained from scratch (diffusers UNet2DModel + DDPMScheduler).

Modules: `model` (the UNet and loading a trained model directory), `schedule` (which word each image is trained
with at each optimizer step, and classifier-free-guidance dropout), `data` (manifest + conditioning table ->
tensors), `checkpoint` (resumable training state), `trainer` (the loop), `launch` (single- or multi-process).
"""
