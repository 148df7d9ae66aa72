"""StableBias: prompt-embedding bias vs output-distribution bias over the 150 StableBias professions."""
