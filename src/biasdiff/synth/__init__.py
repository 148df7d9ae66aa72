"""Stage 1, synthesize: images of people per prompt, one Parquet shard per job."""
