"""Scores of conditional diffusion models, shared by the score audits and the FairFace audit: one `ScoreModel`
interface (score_models.py) over the own word-conditioned DDPM and diffusers text-to-image pipelines, ScoreDecomp
(decomp.py, simplex.py), the ELBO diffusion classifier (elbo.py), and the shared forward-noise draws (noise.py)."""

from biasdiff.scores.decomp import VARIANTS, DecompResult, decompose, score_decomp
from biasdiff.scores.elbo import ElboResult, elbo_classify, even_timesteps
from biasdiff.scores.score_models import NULL, DiffusersScore, ScoreModel, WordDDPMScore
from biasdiff.scores.simplex import simplex_least_squares

__all__ = ["NULL", "VARIANTS", "DecompResult", "DiffusersScore", "ElboResult", "ScoreModel", "WordDDPMScore",
           "decompose", "elbo_classify", "even_timesteps", "score_decomp", "simplex_least_squares"]
