"""The embed stage: conditioning-word vectors from the configured source -> JL projection (-> optional transform)
-> artifacts training reads, plus bias and distortion diagnostics before and after projection.

Spaces in the diagnostics: "original" (source vectors, L2-normalised, d-dim), "projected" (seeded Gaussian JL to
k = embedding.dim, what training sees without a transform) and, when embedding.transform.kind is not "none",
"transformed" (the transform applied in the projected space, along that space's gender direction: what training
sees then). Each space's gender direction is computed from that space's own definitional-pair vectors.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from biasdiff.vectors.bias import cosine, gender_direction, gender_projection, weat
from biasdiff.vectors.projection import distortion, jl_matrix, l2_normalize, project_jl
from biasdiff.vectors.sources import load_source, lookup, reference_words, vector_table
from biasdiff.embed.transforms import apply_transform, transform_label
from biasdiff.vectors.wordlists import DEFINITIONAL_PAIRS, WEAT_TESTS, gendered_words
from biasdiff.errors import DataError
from biasdiff.seeds import derive_seed

log = logging.getLogger(__name__)

DEFAULTS = {
    "source": {
        "kind": "glove-wheel",
        "name": "word2vec-google-news-300",
        "path": None,
        "format": "auto",
        "limit": None,
    },
    "dim": 128,
    "seed": 0,
    "reference_words": 1000,
    "weat_permutations": 10_000,
    "transform": {"kind": "none", "scale": 1.0, "gendered_words": [], "words": [], "seed": 0, "iterations": 10,
                  "train_words": 200},
}


def _settings(embedding: Mapping) -> dict:
    """`embedding` config section with defaults filled (the schema fills them in the workflow; this helps callers)."""
    out = {**DEFAULTS, **dict(embedding)}
    out["source"] = {**DEFAULTS["source"], **dict(embedding.get("source", {}))}
    out["transform"] = {**DEFAULTS["transform"], **dict(embedding.get("transform", {}))}
    return out


@dataclass
class EmbedResult:
    """Everything the stage writes, in memory.

    conditioning: word, vector (list<float32>, length dim), source, seed, dim, transform - one row per word.
    vectors: the source vectors of the conditioning words (word, vector (length d), source, dim).
    bias: one row per (space, word): gender_projection = cos(word, g), cos_man, cos_woman, cos_ratio_man_woman,
        neutral (transformable), direction_explained (share of pair variance along g in that space).
    weat: one row per (space, test): effect_size, p_value, statistic, n_permutations, exact.
    distortion: JSON-ready dict of the JL distortion over conditioning and reference words.
    """

    conditioning: pd.DataFrame
    vectors: pd.DataFrame
    bias: pd.DataFrame
    weat: pd.DataFrame
    distortion: dict
    spaces: dict = field(default_factory=dict)


def _unique(words: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(words))


def compute_embeddings(kv, source: str, words: Sequence[str], embedding: Mapping) -> EmbedResult:
    """Run the stage on loaded vectors `kv` (gensim KeyedVectors) labelled `source`, for conditioning `words`."""
    cfg = _settings(embedding)
    words = _unique(words)
    if not words:
        raise DataError("no conditioning words; add words to prompts.*.words in the config")
    k, seed = int(cfg["dim"]), int(cfg["seed"])
    female = [f for f, _ in DEFINITIONAL_PAIRS]
    male = [m for _, m in DEFINITIONAL_PAIRS]
    weat_words = _unique([w for test in WEAT_TESTS.values() for group in test for w in group])

    cond_raw = lookup(kv, words, source, "conditioning words")
    pair_raw = lookup(kv, female + male, source, "definitional pair words")
    weat_raw = lookup(kv, weat_words, source, "WEAT words")

    # one table of every word the diagnostics need; the first len(words) rows are the conditioning words
    all_words = _unique(words + female + male + weat_words)
    pool = {w: v for w, v in zip(words + female + male + weat_words, np.concatenate([cond_raw, pair_raw, weat_raw]))}
    raw = np.stack([pool[w] for w in all_words])
    row = {w: i for i, w in enumerate(all_words)}
    gendered = gendered_words() | {w.lower() for w in cfg["transform"]["gendered_words"]}
    neutral = np.array([w.lower() not in gendered for w in all_words])

    d = raw.shape[1]
    matrix = jl_matrix(d, k, seed)
    spaces = {"original": l2_normalize(raw), "projected": project_jl(raw, matrix)}
    transform = cfg["transform"]
    refs = reference_words(kv, int(cfg["reference_words"]), exclude=words)
    ref_raw = lookup(kv, refs, source, "reference words")
    if transform["kind"] != "none":
        g_proj, _ = gender_direction(
            spaces["projected"][[row[w] for w in female]], spaces["projected"][[row[w] for w in male]]
        )
        inlp = None
        if transform["kind"] == "inlp":
            inlp = _inlp_training(project_jl(ref_raw, matrix), refs, g_proj, int(transform["train_words"]))
            inlp["iterations"] = int(transform["iterations"])
        spaces["transformed"] = apply_transform(
            spaces["projected"], neutral, g_proj, transform["kind"], transform["scale"],
            words=all_words, targets=transform["words"], seed=derive_seed(seed, "transform", transform["seed"]),
            inlp=inlp,
        )

    bias_rows, weat_rows = [], []
    man, woman = row[DEFINITIONAL_PAIRS[0][1]], row[DEFINITIONAL_PAIRS[0][0]]
    for space, vecs in spaces.items():
        g, explained = gender_direction(vecs[[row[w] for w in female]], vecs[[row[w] for w in male]])
        cond = vecs[[row[w] for w in words]]
        proj = gender_projection(cond, g)
        cos_mw = cosine(cond, vecs[[man, woman]])
        for i, word in enumerate(words):
            bias_rows.append(
                {
                    "space": space,
                    "word": word,
                    "dim": int(vecs.shape[1]),
                    "gender_projection": float(proj[i]),
                    "cos_man": float(cos_mw[i, 0]),
                    "cos_woman": float(cos_mw[i, 1]),
                    "cos_ratio_man_woman": float(cos_mw[i, 0] / cos_mw[i, 1]) if cos_mw[i, 1] != 0 else float("nan"),
                    "neutral": bool(neutral[row[word]]),
                    "direction_explained": explained,
                }
            )
        for name, (x, y, a, b) in WEAT_TESTS.items():
            res = weat(
                *(vecs[[row[w] for w in group]] for group in (x, y, a, b)),
                permutations=int(cfg["weat_permutations"]),
                seed=derive_seed(seed, "weat", name, space),
            )
            weat_rows.append(
                {
                    "space": space,
                    "test": name,
                    "effect_size": res.effect_size,
                    "p_value": res.p_value,
                    "statistic": res.statistic,
                    "n_permutations": res.n_permutations,
                    "exact": res.exact,
                    "targets_x": list(x),
                    "targets_y": list(y),
                    "attributes_a": list(a),
                    "attributes_b": list(b),
                }
            )

    final = spaces.get("transformed", spaces["projected"])[: len(words)]
    conditioning = vector_table(words, final, source)
    conditioning["seed"] = np.int64(seed)
    conditioning["transform"] = transform_label(transform)
    conditioning = conditioning[["word", "vector", "source", "seed", "dim", "transform"]]

    dist = {
        "source": source,
        "d": int(d),
        "k": k,
        "seed": seed,
        "normalisation": "L2-normalised source vectors before projection; distances compared before vs after",
        "conditioning": {"words": words, **distortion(l2_normalize(cond_raw), project_jl(cond_raw, matrix))},
        "reference": {
            "words": f"{len(refs)} most frequent alphabetic words of the source",
            **distortion(l2_normalize(ref_raw), project_jl(ref_raw, matrix)),
        },
    }
    return EmbedResult(
        conditioning=conditioning,
        vectors=vector_table(words, cond_raw, source),
        bias=pd.DataFrame(bias_rows),
        weat=pd.DataFrame(weat_rows),
        distortion=dist,
        spaces={name: vecs[: len(words)] for name, vecs in spaces.items()},
    )


def _inlp_training(ref_vectors: np.ndarray, refs: Sequence[str], direction: np.ndarray, per_gender: int) -> dict:
    """INLP's gender-labelled training words (as Ravfogel et al. 2020, who took the words most biased along the
    he-she direction): the `per_gender` reference words with the largest and the smallest projection on the
    projected space's gender direction, labelled female (1) / male (0)."""
    if 2 * per_gender > len(refs):
        raise DataError(f"embedding.transform.train_words {per_gender} per gender needs at least {2 * per_gender} "
                        f"reference words, have {len(refs)}; raise embedding.reference_words or lower train_words")
    proj = gender_projection(ref_vectors, direction)
    order = np.argsort(proj)
    chosen = np.concatenate([order[-per_gender:], order[:per_gender]])
    labels = np.concatenate([np.ones(per_gender, dtype=int), np.zeros(per_gender, dtype=int)])
    return {"vectors": ref_vectors[chosen], "labels": labels}


def bias_figure(bias: pd.DataFrame, weat_table: pd.DataFrame):
    """Bar charts: each conditioning word's projection on the gender direction per space (left), WEAT effect
    sizes per test and space with p-values (right). Returns a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spaces = list(dict.fromkeys(bias["space"]))
    words = list(dict.fromkeys(bias["word"]))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / len(spaces)
    x = np.arange(len(words))
    for j, space in enumerate(spaces):
        sub = bias[bias["space"] == space].set_index("word").loc[words]
        bars = ax1.bar(x + (j - (len(spaces) - 1) / 2) * width, sub["gender_projection"], width, label=space)
        ax1.bar_label(bars, fmt="%+.2f", fontsize=7, padding=2)
    ax1.axhline(0, color="black", lw=0.8)
    ax1.set_xticks(x, words)
    ax1.set_ylabel("cos(word, gender direction)  (+ = woman)")
    ax1.set_title("Projection on the gender direction")
    ax1.legend(fontsize=8)
    tests = list(dict.fromkeys(weat_table["test"]))
    xt = np.arange(len(tests))
    for j, space in enumerate(spaces):
        sub = weat_table[weat_table["space"] == space].set_index("test").loc[tests]
        bars = ax2.bar(xt + (j - (len(spaces) - 1) / 2) * width, sub["effect_size"], width, label=space)
        ax2.bar_label(bars, labels=[f"p={p:.3g}" for p in sub["p_value"]], fontsize=7, padding=2)
    ax2.axhline(0, color="black", lw=0.8)
    ax2.set_xticks(xt, [t.replace("_vs_", "\nvs ").replace("_", " ") for t in tests], fontsize=8)
    ax2.set_ylabel("WEAT effect size d  (+ = stereotype)")
    ax2.set_title("WEAT (female vs male attributes)")
    fig.tight_layout()
    return fig


# The artifacts of the stage, by name (the rule's output names).
OUTPUTS = ("conditioning", "vectors", "bias", "weat", "distortion", "figure")


def run_embed(*, outputs: Mapping[str, str | Path], settings: Mapping, words: Sequence[str]) -> EmbedResult:
    """Stage entry point (rule embed_words): load the source in `settings["source"]` (the `embedding:` config
    section), compute, write every artifact `outputs` names (conditioning, vectors, bias, weat, distortion, figure)
    atomically.

    Nothing is written unless everything was computed; a failure while writing removes what was written.
    """
    import matplotlib.pyplot as plt

    from biasdiff.io import all_or_nothing, save_figure, write_json, write_parquet

    start = time.perf_counter()
    cfg = _settings(settings)
    kv, source = load_source(cfg["source"])
    log.info("loaded %s: %d words x %d dims in %.2f s", source, len(kv), kv.vector_size, time.perf_counter() - start)
    result = compute_embeddings(kv, source, words, cfg)
    fig = bias_figure(result.bias, result.weat)
    for _, r in result.bias.iterrows():
        log.info(
            "%-11s %-12s gender projection %+.3f  cos man %.3f woman %.3f",
            r.space,
            r.word,
            r.gender_projection,
            r.cos_man,
            r.cos_woman,
        )
    for _, r in result.weat.iterrows():
        log.info("%-11s WEAT %-28s d=%+.3f p=%.4g", r.space, r.test, r.effect_size, r.p_value)
    for which in ("conditioning", "reference"):
        dd = result.distortion[which]
        log.info(
            "JL distortion over %s words (%d pairs): max %.3f mean %.3f", which, dd["n_pairs"], dd["max"], dd["mean"]
        )
    try:
        with all_or_nothing([outputs[name] for name in OUTPUTS]):
            for name in ("conditioning", "vectors", "bias", "weat"):
                write_parquet(getattr(result, name), outputs[name])
            write_json(result.distortion, outputs["distortion"])
            save_figure(fig, outputs["figure"])
    finally:
        plt.close(fig)
    log.info("embed stage done in %.2f s", time.perf_counter() - start)
    return result
