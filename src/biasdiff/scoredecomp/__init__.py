"""Score-based audits of conditional diffusion models: ScoreDecomp, the ELBO diffusion classifier, score similarity and
the Lipschitz-in-the-condition diagnostic, over one `ScoreModel` interface (score_models.py) that wraps both the own
word-conditioned DDPM and diffusers text-to-image pipelines."""

from biasdiff.scoredecomp.decomp import VARIANTS, DecompResult, decompose, score_decomp
from biasdiff.scoredecomp.elbo import ElboResult, elbo_classify, even_timesteps
from biasdiff.scoredecomp.score_models import NULL, DiffusersScore, ScoreModel, WordDDPMScore
from biasdiff.scoredecomp.simplex import simplex_least_squares

__all__ = ["NULL", "VARIANTS", "DecompResult", "DiffusersScore", "ElboResult", "ScoreModel", "WordDDPMScore",
           "decompose", "elbo_classify", "even_timesteps", "score_decomp", "simplex_least_squares"]
