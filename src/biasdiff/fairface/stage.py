"""The FairFace audit stage: load the data (configured root or the procedural fixture), build the configured score
model, run ScoreDecomp + ELBO, write predictions, accuracy, confusion matrix and a figure."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt

from biasdiff.errors import ConfigError
from biasdiff.fairface.audit import accuracy_figure, run_audit, summarise, task_specs
from biasdiff.fairface.load import load_fairface
from biasdiff.io import save_figure, write_parquet

log = logging.getLogger(__name__)

SCORE_MODEL_KINDS = ("ddpm", "diffusers")


def build_score_model(score_model: Mapping, prompts: list[str], device: str, dtype: str, model_dir=None,
                      conditioning=None, precision: str = "fp32"):
    """A ScoreModel: the own word DDPM (kind "ddpm", from `model_dir` + the conditioning artifact) or a diffusers
    text-to-image pipeline (kind "diffusers", `score_model.id` = hub id or local directory). `precision` (auto / bf16 /
    fp32) is the own DDPM's autocast (fp32 weights); a diffusers pipeline runs in its `dtype`."""
    kind = score_model.get("kind")
    batch_size = int(score_model.get("batch_size", 16))
    if kind == "ddpm":
        from biasdiff.artifacts.conditioning import load_conditioning
        from biasdiff.scores import WordDDPMScore

        if model_dir is None or conditioning is None:
            raise ConfigError("fairface.score_model.kind ddpm needs the trained model directory and the conditioning artifact")
        vectors = load_conditioning(conditioning)
        missing = [p for p in prompts if p and p not in vectors]
        if missing:
            raise ConfigError(f"config key fairface.prompts: word(s) {missing} are not conditioning words of the own DDPM; "
                              f"valid: {sorted(vectors)}")
        return WordDDPMScore.from_model_dir(model_dir, {w: vectors[w] for w in vectors}, device=device, dtype=dtype,
                                            batch_size=batch_size, precision=precision, key="fairface.precision")
    if kind == "diffusers":
        from biasdiff.scores import DiffusersScore
        from biasdiff.devices import resolve_device, resolve_dtype

        if not score_model.get("id"):
            raise ConfigError("config key fairface.score_model.id is empty; give a diffusers pipeline hub id or local directory "
                              "(paper: stabilityai/stable-diffusion-2-1)")
        dev = resolve_device(device)
        return DiffusersScore.from_pretrained(str(score_model["id"]), [p for p in prompts if p], device=dev,
                                              dtype=resolve_dtype(dtype, dev), batch_size=batch_size)
    raise ConfigError(f"config key fairface.score_model.kind {kind!r} is not valid; valid: {list(SCORE_MODEL_KINDS)}")


def run_fairface(settings: Mapping, root: str | Path, image_size: int, outputs: Mapping[str, str], model_dir=None,
                 conditioning=None) -> None:
    """Audit one FairFace split with the configured score model and write every artifact.

    settings: the `fairface` config section. root: the FairFace root (the configured one, or the fixture).
    image_size: resolution the images are resized to before encoding (the own DDPM's training size, or the
    diffusers pipeline's native size from fairface.image_size). outputs: predictions, accuracy, confusion, figure.
    """
    tasks = task_specs(settings["prompts"])
    base = str(settings["prompts"].get("base", ""))
    prompts = [base] + [p for t in tasks for p in t.prompts]
    dataset = load_fairface(root, settings["layout"], settings["split"], str(settings["padding"]))
    model = build_score_model(settings["score_model"], prompts, settings["device"], settings["dtype"], model_dir,
                              conditioning, precision=settings["precision"])
    predictions = run_audit(
        dataset, model, tasks, base, num_data=int(settings["num_data"]), seed=int(settings["seed"]),
        image_size=int(image_size), timesteps=list(settings["timesteps"]), n_draws=int(settings["n_draws"]),
        elbo=settings.get("elbo"), batch=int(settings["score_model"].get("batch_size", 16)) * 4,
    )
    accuracy, confusion = summarise(predictions, tasks)
    for r in accuracy[accuracy["group_by"] == "overall"].itertuples():
        log.info("%s %s: accuracy %.3f [%.3f, %.3f] over %d labelled image(s), %d unlabelled", r.task, r.method,
                 r.accuracy, r.ci_low, r.ci_high, r.n, r.n_unlabelled)
    fig = accuracy_figure(accuracy)
    write_parquet(predictions, outputs["predictions"])
    write_parquet(accuracy, outputs["accuracy"])
    write_parquet(confusion, outputs["confusion"])
    save_figure(fig, outputs["figure"])
    plt.close(fig)
