"""The StableBias audit: embedding bias vs output bias over the 150 StableBias professions.

Inputs (all from config, nothing downloaded by default):
- embedding bias per profession: the word-vector gender projection (embed stage's source and direction) and,
  if a text encoder is configured, the seed's prompt-cosine ratio;
- output bias per profession: Fair Diffusion's published FairFace-classifier counts (shipped), and, if a StableBias
  image dataset and a CLIP model are configured, CLIP zero-shot labels per generating model.
Outputs: stablebias_embedding.parquet, stablebias_output.parquet, stablebias_relation.parquet,
stablebias_crosscheck.parquet, stablebias_scatter.png.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from biasdiff.errors import ConfigError  # noqa: E402
from biasdiff.io import save_figure, write_parquet  # noqa: E402
from biasdiff.stablebias.regression import relate  # noqa: E402
from biasdiff.stablebias.resources import load_crosscheck, load_professions, load_published_output  # noqa: E402

log = logging.getLogger(__name__)

EMBEDDING_METHODS = {
    "word_projection": "word-vector gender projection cos(v, g)  (> 0: nearer 'woman')",
    "text_ratio": "text-encoder cos(p, p+woman) / cos(p, p+man)",
}
N_LABELLED_EXTREMES = 4


@dataclass
class StableBiasResult:
    embedding: pd.DataFrame
    output: pd.DataFrame
    relation: pd.DataFrame
    crosscheck: pd.DataFrame


def embedding_bias(professions: pd.DataFrame, embedding_source: Mapping, text_encoder: Mapping, device="cpu") -> pd.DataFrame:
    """One row per profession: profession, key, word_projection, n_in_vocab, oov_words, word_source, and the text
    encoder columns (cos_man, cos_woman, seed_ratio, text_ratio, text_encoder) when one is configured."""
    from biasdiff.vectors.sources import load_source
    from biasdiff.stablebias.wordbias import definitional_direction, profession_projections

    kv, label = load_source(embedding_source)
    direction = definitional_direction(kv, label)
    words = profession_projections(kv, professions["profession"].tolist(), direction)
    table = professions[["profession", "key"]].merge(words, on="profession")
    table["word_source"] = label
    oov = table[table["n_in_vocab"] < table["n_words"]]
    log.info("word vectors %s: %d profession(s) with out-of-vocabulary words, %d with none in vocabulary",
             label, len(oov), int(table["word_projection"].isna().sum()))
    if text_encoder.get("model"):
        from biasdiff.stablebias.textbias import load_text_encoder, text_bias

        enc = load_text_encoder(text_encoder["model"], text_encoder.get("subfolder"), text_encoder.get("tokenizer_subfolder"),
                                text_encoder.get("pooling", "flatten"), device=device)
        table = table.merge(text_bias(enc, professions["profession"].tolist()), on="profession")
        table["text_encoder"] = f"{text_encoder['model']}:{text_encoder.get('pooling', 'flatten')}"
    return table


def output_bias(professions: pd.DataFrame, published: list[str], dataset: Mapping, device="cpu") -> pd.DataFrame:
    """Fraction of women per (model, profession) from every configured source; columns model, condition, source,
    profession, key, n_images, n_woman, frac_woman, status."""
    frames = []
    if published:
        pub = load_published_output(tuple(published))
        pub["status"] = np.where(pub["n_images"] > 0, "ok", "no images")
        frames.append(pub)
    if dataset.get("path"):
        if not dataset.get("clip"):
            raise ConfigError("config key stablebias.dataset.clip is null but stablebias.dataset.path is set; give a CLIP "
                              "model id or local directory to label the images")
        from biasdiff.stablebias.images import label_dataset, load_clip

        model, processor = load_clip(dataset["clip"], device=device)
        clip = label_dataset(dataset["path"], model, processor, professions, dataset.get("max_per_profession"), device)
        clip["condition"] = "images"
        frames.append(clip)
    if not frames:
        raise ConfigError("stablebias: no output source; set stablebias.published (e.g. [sd15_baseline]) or stablebias.dataset.path")
    return pd.concat(frames, ignore_index=True)[
        ["model", "condition", "source", "profession", "key", "n_images", "n_woman", "frac_woman", "status"]
    ]


def relation_table(embedding: pd.DataFrame, output: pd.DataFrame) -> pd.DataFrame:
    """Regression of frac_woman on each embedding-bias column, per (model, condition, source)."""
    rows = []
    methods = [m for m in EMBEDDING_METHODS if m in embedding.columns]
    for (model, condition, source), out in output.groupby(["model", "condition", "source"], sort=True):
        merged = out.merge(embedding, on="key", suffixes=("", "_emb"))
        for method in methods:
            stats = relate(merged[method], merged["frac_woman"])
            rows.append({"model": model, "condition": condition, "source": source, "embedding": method,
                         "x": EMBEDDING_METHODS[method], "y": "fraction of women among the profession's images",
                         "n_no_images": int((merged["status"] == "no images").sum())} | stats)
    return pd.DataFrame(rows)


def scatter_figure(embedding: pd.DataFrame, output: pd.DataFrame, relation: pd.DataFrame):
    """One panel per (output series, embedding method): points, least-squares line, and labels on the extremes
    (the two lowest and highest x, and the two largest residuals either side of the line)."""
    panels = relation.to_dict("records")
    ncols = min(2, len(panels))
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 4.8 * nrows), squeeze=False)
    for ax, rel in zip(axes.flat, panels):
        out = output[(output["model"] == rel["model"]) & (output["condition"] == rel["condition"])
                     & (output["source"] == rel["source"])]
        m = out.merge(embedding, on="key", suffixes=("", "_emb"))
        m = m[np.isfinite(m[rel["embedding"]]) & np.isfinite(m["frac_woman"])]
        x, y = m[rel["embedding"]].to_numpy(), m["frac_woman"].to_numpy()
        ax.scatter(x, y, s=12, alpha=0.7)
        if np.isfinite(rel["slope"]):
            xs = np.linspace(x.min(), x.max(), 50)
            ax.plot(xs, rel["slope"] * xs + rel["intercept"], color="tab:red", lw=1.5)
        order = np.argsort(x)
        label_idx = set(order[:N_LABELLED_EXTREMES // 2]) | set(order[-(N_LABELLED_EXTREMES // 2):])
        if np.isfinite(rel["slope"]):
            resid = np.argsort(y - (rel["slope"] * x + rel["intercept"]))
            label_idx |= set(resid[:N_LABELLED_EXTREMES // 2]) | set(resid[-(N_LABELLED_EXTREMES // 2):])
        for i in sorted(label_idx):
            ax.annotate(m["profession"].iloc[i], (x[i], y[i]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(rel["x"], fontsize=8)
        ax.set_ylabel("fraction of women")
        ax.set_title(f"{rel['model']} [{rel['condition']}]\nr={rel['r']:.3f}  R²={rel['r2']:.3f}  p={rel['p']:.2g}  "
                     f"ρ={rel['spearman_rho']:.3f}  n={rel['n']}", fontsize=9)
        ax.set_ylim(-0.03, 1.03)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def run_stablebias(settings: Mapping, embedding_source: Mapping, outputs: Mapping[str, str]) -> StableBiasResult:
    """Compute and write every StableBias artifact.

    settings: the `stablebias` config section (text_encoder, published, dataset, device).
    embedding_source: the `embedding.source` config section (word vectors shared with the embed stage).
    outputs: paths for keys embedding, output, relation, crosscheck, figure.
    """
    from biasdiff.devices import resolve_device

    device = resolve_device(settings.get("device", "auto"))
    professions = load_professions()
    emb = embedding_bias(professions, embedding_source, settings.get("text_encoder", {}), device)
    out = output_bias(professions, list(settings.get("published", [])), settings.get("dataset", {}), device)
    rel = relation_table(emb, out)
    for r in rel.itertuples():
        log.info("%s [%s] vs %s: n=%d r=%.3f R2=%.3f p=%.3g rho=%.3f", r.model, r.condition, r.embedding, r.n, r.r, r.r2,
                 r.p, r.spearman_rho)
    cross = load_crosscheck()
    fig = scatter_figure(emb, out, rel)
    write_parquet(emb, outputs["embedding"])
    write_parquet(out, outputs["output"])
    write_parquet(rel, outputs["relation"])
    write_parquet(cross, outputs["crosscheck"])
    save_figure(fig, outputs["figure"])
    plt.close(fig)
    return StableBiasResult(emb, out, rel, cross)
