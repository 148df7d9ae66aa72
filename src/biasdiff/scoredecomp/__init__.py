"""Stage 6b, score audits of the own DDPM: ScoreDecomp and the ELBO classifier on held-out images, ScoreDecomp
proportions of the samples, score-space bias per word (`bias`), score similarity (`similarity`) and the
Lipschitz-in-the-condition diagnostic (`lipschitz`); `stage` holds the entry points the scripts call. The scores
themselves come from `biasdiff.scores`."""
