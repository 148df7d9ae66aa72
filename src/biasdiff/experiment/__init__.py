"""The experiment as a design: embedding arms x training replicates (design: resolved from the config before any
job), and the summary across models (stats, summary, figures). The per-model pieces live with their stages:
sampling at a point in `biasdiff.sample.points`, the per-model audit in `biasdiff.audit.model_audit`."""
