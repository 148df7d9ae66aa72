"""Word vectors, shared by the embed stage and the StableBias audit: loading a source (`sources`: GloVe wheel,
gensim-data, a local word2vec/GloVe/KeyedVectors file), the JL projection (`projection`), the gender direction,
projections and WEAT (`bias`) and the word lists they use (`wordlists`)."""
