"""The experiment as a design: embedding arms x training replicates (design), sampling points of each model
(guidance scales, training-length snapshots), their per-model audit, and the summary across models (stats,
summary, figures)."""
