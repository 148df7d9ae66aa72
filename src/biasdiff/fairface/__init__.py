"""FairFace: loaders for both published layouts, a FairFace-format fixture from procedural people, and the
ScoreDecomp / ELBO audit of a score model on it (accuracy overall, per race and per gender, with CIs)."""
