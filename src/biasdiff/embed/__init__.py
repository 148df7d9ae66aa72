"""Stage 3, embed: word vectors for the conditioning words (GloVe wheel, gensim-data or a local file), seeded
Gaussian JL projection to `embedding.dim`, optional bias transforms, and gender-bias / distortion diagnostics.

`load_conditioning(path)` is what the training and sampling stages use to read the result.
"""

from biasdiff.embed.conditioning import ConditioningVectors, load_conditioning
from biasdiff.embed.stage import compute_embeddings, embed_words

__all__ = ["ConditioningVectors", "compute_embeddings", "embed_words", "load_conditioning"]
