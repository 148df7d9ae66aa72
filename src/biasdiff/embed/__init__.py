"""Stage 3, embed: word vectors for the conditioning words (GloVe wheel, gensim-data or a local file), seeded
Gaussian JL projection to `embedding.dim`, optional bias transforms, and gender-bias / distortion diagnostics.

`load_conditioning(path)` is what the training and sampling stages use to read the result.

The names below are imported on first use (PEP 562), so that light submodules (`wordlists`, `vocabulary`, which the
workflow imports while it builds the DAG) do not pull in gensim; the import statements stay in this file, so the
rules' code hashes (`biasdiff.codeversion`) still follow them.
"""

__all__ = ["ConditioningVectors", "compute_embeddings", "embed_words", "load_conditioning"]


def __getattr__(name: str):
    if name in ("ConditioningVectors", "load_conditioning"):
        from biasdiff.embed.conditioning import ConditioningVectors, load_conditioning

        return {"ConditioningVectors": ConditioningVectors, "load_conditioning": load_conditioning}[name]
    if name in ("compute_embeddings", "embed_words"):
        from biasdiff.embed.stage import compute_embeddings, embed_words

        return {"compute_embeddings": compute_embeddings, "embed_words": embed_words}[name]
    raise AttributeError(f"module 'biasdiff.embed' has no attribute {name!r}")
