# Helpers of stages 4-5 (train, sample): the words sampled, each stage's outputs, config slice and GPU count, and the
# checked model input of sample_word. Included after rules/common.smk (results(), trained_model_input()).
from biasdiff.sample.words import sample_words

SAMPLE_WORDS = sample_words(config["prompts"])


def train_outputs(model):
    """Every artifact of one trained model, by name."""
    base = f"models/{model}"
    return {
        "unet": directory(results(f"{base}/unet")),
        "unet_ema": directory(results(f"{base}/unet_ema")),
        "scheduler": directory(results(f"{base}/scheduler")),
        "config": results(f"{base}/train_config.json"),
        "log_csv": results(f"{base}/train_log.csv"),
        "loss_plot": results(f"{base}/loss.png"),
        "samples": results(f"{base}/samples.png"),
    }


def train_prompt_words():
    """prompt -> its conditioning words: the only part of `prompts:` training depends on."""
    return {name: list(spec["words"]) for name, spec in config["prompts"].items()}


def train_gpus():
    """GPUs the training job asks for: one per data-parallel process on CUDA, none on CPU."""
    device = config["train"]["device"]
    return config["train"]["num_processes"] if device.startswith("cuda") else 0


def sample_model_input(wildcards=None):
    """The model the sample stage loads (the {model} wildcard of sample_word, else train.model), checked as
    trained_model_input does."""
    return trained_model_input(getattr(wildcards, "model", None) or trained_model())


def sample_outputs(model, word):
    """The three artifacts of one word's samples, by name."""
    return {
        "images": results(f"samples/{model}/{word}.npy"),
        "meta": results(f"samples/{model}/{word}.parquet"),
        "grid": results(f"samples/{model}/grid_{word}.png"),
    }


def sample_gpus():
    """GPUs one sampling job asks for: 1 when sample.device names CUDA, else 0."""
    return 1 if config["sample"]["device"].startswith("cuda") else 0
