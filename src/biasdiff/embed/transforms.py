"""Transforms of word vectors in the projected space, for experiments (embedding.transform).

Along a gender direction g (unit, shape (d,)), applied to gender-neutral words only:
- `hard_debias` (Bolukbasi et al. 2016, "neutralize" step): remove the component along g, then restore the
  vector's original length (their vectors are unit length; ours are JL-projected, so the length is kept).
- `scale_bias` with lambda: v -> v - (1 - lambda) (v . g) g, i.e. the component along g is multiplied by lambda
  (lambda = 1: unchanged; 0: neutralised without renormalising; 2: bias doubled; -1: bias mirrored).
- `inlp`: Iterative Nullspace Projection (Ravfogel, Elazar, Gonen, Twiton & Goldberg 2020, "Null It Out: Guarding
  Protected Attributes by Iterative Nullspace Projection", ACL): repeatedly fit a linear classifier of gender on
  gender-labelled words and project every vector onto the nullspace of all classifiers found so far; removes every
  linearly decodable gender direction, not only g (Gonen & Goldberg 2019 showed that hard-debias leaves gender
  recoverable from the rest of the vector). Lengths are restored as for hard-debias.
Gendered words (definitional pairs, WEAT attribute sets, configured extras) are never transformed by these.

Named interventions on chosen words (any words, gendered or not):
- `swap`: two words exchange their vectors (the causal test: does the output gap follow the vector?);
- `random`: each named word gets a seeded random direction with its own length (a vector that carries no
  semantics, hence no gender association beyond chance).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

TRANSFORM_KINDS = ("none", "hard-debias", "bias-scale", "inlp", "swap", "random")
NAMED_KINDS = ("swap", "random")  # transforms of the words listed in transform.words


def _unit(direction: np.ndarray) -> np.ndarray:
    return direction / np.linalg.norm(direction)


def _keep_norms(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    old, new = np.linalg.norm(before, axis=1), np.linalg.norm(after, axis=1)
    scale = np.divide(old, new, out=np.ones_like(old), where=new > 0)
    return after * scale[:, None]


def hard_debias(vectors: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Rows of `vectors` (n, d) with the component along `direction` removed and their norms restored: (n, d)."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    g = _unit(direction)
    return _keep_norms(vectors, vectors - np.outer(vectors @ g, g))


def scale_bias(vectors: np.ndarray, direction: np.ndarray, lam: float) -> np.ndarray:
    """Rows of `vectors` (n, d) with their component along `direction` multiplied by `lam`: (n, d)."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    g = _unit(direction)
    return vectors - (1.0 - lam) * np.outer(vectors @ g, g)


def inlp_projection(train_vectors: np.ndarray, labels: np.ndarray, iterations: int, seed: int = 0) -> np.ndarray:
    """The INLP projection matrix P (d, d): the projection onto the intersection of the nullspaces of `iterations`
    linear gender classifiers (scikit-learn LinearSVC, as Ravfogel et al.), each fit on the training vectors already
    projected by the previous ones. `labels` (n,) binary. Stops early once a classifier is at chance (nothing
    linear left to remove)."""
    from sklearn.svm import LinearSVC

    x = np.asarray(train_vectors, dtype=np.float64)
    y = np.asarray(labels).astype(int)
    d = x.shape[1]
    directions = np.zeros((0, d))
    projection = np.eye(d)
    for i in range(int(iterations)):
        clf = LinearSVC(C=1.0, fit_intercept=False, dual="auto", max_iter=20_000, random_state=(seed + i) % 2**32)
        clf.fit(x @ projection, y)
        if clf.score(x @ projection, y) <= max(np.mean(y), 1 - np.mean(y)) + 1e-9:
            break
        w = clf.coef_.reshape(1, d)
        directions = np.vstack([directions, w / np.linalg.norm(w)])
        q, _ = np.linalg.qr(directions.T)  # orthonormal basis of the span of every classifier's direction
        projection = np.eye(d) - q @ q.T
    return projection


def random_directions(n: int, d: int, seed: int) -> np.ndarray:
    """n seeded Gaussian directions of unit length: (n, d)."""
    v = np.random.default_rng(seed).standard_normal((n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def apply_transform(
    vectors: np.ndarray,
    neutral: np.ndarray,
    direction: np.ndarray,
    kind: str,
    lam: float = 1.0,
    *,
    words: Sequence[str] = (),
    targets: Sequence[str] = (),
    seed: int = 0,
    inlp: Mapping | None = None,
) -> np.ndarray:
    """Apply transform `kind` (one of TRANSFORM_KINDS) to the rows of `vectors` (n, d).

    Direction transforms change the rows where `neutral` (n,) is True. Named transforms (swap, random) change the
    rows of the words in `targets`, looked up in `words` (the row labels, length n). `inlp`: {"vectors", "labels",
    "iterations"} (the gender-labelled training words, in the same space)."""
    if kind not in TRANSFORM_KINDS:
        raise ValueError(f"embedding.transform.kind {kind!r} is unknown; valid: {list(TRANSFORM_KINDS)}")
    out = np.array(vectors, dtype=np.float64, copy=True)
    neutral = np.asarray(neutral, dtype=bool)
    if kind in NAMED_KINDS:
        rows = {w: i for i, w in enumerate(words)}
        missing = [w for w in targets if w not in rows]
        if missing:
            raise ValueError(f"embedding.transform.words {missing} are not among the embedded words {list(rows)}")
        idx = [rows[w] for w in targets]
        if kind == "swap":
            if len(idx) != 2:
                raise ValueError(f"embedding.transform.kind swap needs exactly two words, got {list(targets)}")
            out[idx] = out[idx[::-1]]
        else:
            norms = np.linalg.norm(out[idx], axis=1, keepdims=True)
            out[idx] = random_directions(len(idx), out.shape[1], seed) * norms
        return out
    if kind == "none" or not neutral.any():
        return out
    if kind == "hard-debias":
        out[neutral] = hard_debias(out[neutral], direction)
    elif kind == "inlp":
        if not inlp:
            raise ValueError("embedding.transform.kind inlp needs gender-labelled training vectors")
        p = inlp_projection(inlp["vectors"], inlp["labels"], inlp["iterations"], seed)
        out[neutral] = _keep_norms(out[neutral], out[neutral] @ p)
    else:
        out[neutral] = scale_bias(out[neutral], direction, lam)
    return out


def transform_label(transform: Mapping) -> str:
    """The conditioning table's `transform` column: none, hard-debias, bias-scale:2, swap:nurse,philosopher, ..."""
    kind = str(transform["kind"])
    if kind == "bias-scale":
        return f"bias-scale:{transform['scale']:g}"
    if kind in ("swap", "random"):
        return f"{kind}:{','.join(transform['words'])}"
    if kind == "inlp":
        return f"inlp:{transform['iterations']}x{transform['train_words']}"
    return kind
