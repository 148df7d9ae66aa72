"""Stage 5, sample: per-word images from a trained word-conditioned DDPM with classifier-free guidance.

`samplers` holds the guided DDPM/DDIM loops (diffusers schedulers do the update steps), `grid` the contact grid,
`stage` the per-word stage function the workflow's script calls.
"""

from biasdiff.sample.samplers import SAMPLERS, guided_eps, make_scheduler, sample_images

__all__ = ["SAMPLERS", "guided_eps", "make_scheduler", "sample_images"]
