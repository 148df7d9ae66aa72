"""Stage 3, embed: word vectors for the conditioning words (`biasdiff.vectors`: GloVe wheel, gensim-data or a local
file), seeded Gaussian JL projection to `embedding.dim`, optional bias transforms (`transforms`), and gender-bias /
distortion diagnostics; `stage` holds the entry point. `vocabulary` checks the words at DAG time (light imports).

Later stages read the result with `biasdiff.artifacts.conditioning.load_conditioning`.
"""
