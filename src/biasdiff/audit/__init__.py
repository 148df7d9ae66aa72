"""Stage 6a, audit of what the model draws: an attribute classifier trained on the labeled synthetic images
(`classifier`), interval estimates and tests (`stats`), the training data's P(female | word) (`training`),
the per-word sample audit (`sample_audit`) and its figures (`plots`)."""
