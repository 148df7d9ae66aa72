# Helpers of stages 1-3 (synthesize, manifest, embed): shard lists and each stage's config slice, inputs, outputs.
# Included after rules/common.smk (results(), PROMPTS, the library imports).


def shards_of(prompt):
    """Shard ids of one prompt: 00000, 00001, ... (count / shard_size, rounded up)."""
    spec = config["prompts"][prompt]
    return [
        f"{i:05d}" for i in range(len(shard_ranges(spec["count"], spec["shard_size"])))
    ]


def shard_files(wildcards=None):
    """Every shard of every prompt (input of the manifest)."""
    return [
        results(f"synth/{prompt}/shard-{shard}.parquet")
        for prompt in PROMPTS
        for shard in shards_of(prompt)
    ]


def shard_params(wildcards):
    """Exactly what one shard's images depend on: its prompt, its index range, the backend and the seed.

    The prompt's count is deliberately absent: raising it adds shards without rerunning existing ones.
    """
    spec = config["prompts"][wildcards.prompt]
    ranges = shard_ranges(spec["count"], spec["shard_size"])
    shard = int(wildcards.shard)
    if shard >= len(ranges):
        raise ValueError(
            f"shard {wildcards.shard} of prompt {wildcards.prompt} does not exist; "
            f"valid: 00000..{len(ranges) - 1:05d}"
        )
    start, stop = ranges[shard]
    synth = config["synthesis"]
    return {
        "prompt": wildcards.prompt,
        "text": spec["text"],
        "attributes": spec["attributes"],
        "start": start,
        "stop": stop,
        "seed": config["seed"],
        "backend": synth["backend"],
        "store_size": synth["store_size"],
        "settings": synth[synth["backend"]],
    }


def synth_gpus():
    """GPUs one synthesis job asks for: 1 for the diffusers backend, 0 for the procedural one."""
    return 1 if config["synthesis"]["backend"] == "diffusers" else 0


def manifest_params():
    """The config slice the manifest depends on (never the synthesis settings: those reach it through the shards)."""
    return {
        "seed": config["seed"],
        "image_size": config["image_size"],
        "prompts": {
            name: {"words": spec["words"], "attributes": spec["attributes"]}
            for name, spec in config["prompts"].items()
        },
        "manifest": config["manifest"],
    }


def conditioning_words():
    """The union of every prompt's words, sorted: the words the embed stage makes vectors for."""
    return sorted(
        {word for spec in config["prompts"].values() for word in spec["words"]}
    )


def embedding_params():
    """The config slice the embed stage depends on: the embedding section and the conditioning words."""
    return {"embedding": config["embedding"], "words": conditioning_words()}


def embedding_inputs():
    """The local vectors file when the embedding source is a file (so editing it reruns embed), else nothing."""
    source = config["embedding"]["source"]
    if source["kind"] == "file" and source["path"]:
        return {"vectors": source["path"]}
    return {}


def embedding_outputs():
    """Every artifact of the embed stage, by name."""
    return {
        "conditioning": results("embeddings/conditioning.parquet"),
        "vectors": results("embeddings/vectors.parquet"),
        "bias": results("embeddings/bias.parquet"),
        "weat": results("embeddings/weat.parquet"),
        "distortion": results("embeddings/distortion.json"),
        "figure": results("embeddings/bias.png"),
    }
