"""Least squares over the probability simplex: w = argmin ||S w − s0||₂ subject to w ≥ 0, Σ w = 1.

The problem only depends on the K×K Gram matrix G = SᵀS and b = Sᵀs0, so it is solved in K dimensions whatever the
length d of the score vectors. scipy's SLSQP finds the active set; the solution is then polished exactly by solving
the equality-constrained least squares (KKT system) on the support and checking the KKT conditions, so answers on
the simplex boundary (some w_k = 0) are exact, not merely close.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from biasdiff.errors import DataError


def _support_solution(G: np.ndarray, b: np.ndarray, support: np.ndarray) -> np.ndarray | None:
    """Minimiser of wᵀGw − 2bᵀw with Σw = 1 and w_k = 0 off `support` (None if the KKT system is singular)."""
    k = len(G)
    idx = np.flatnonzero(support)
    m = len(idx)
    kkt = np.zeros((m + 1, m + 1))
    kkt[:m, :m] = 2.0 * G[np.ix_(idx, idx)]
    kkt[:m, m] = 1.0
    kkt[m, :m] = 1.0
    rhs = np.concatenate([2.0 * b[idx], [1.0]])
    sol, *_ = np.linalg.lstsq(kkt, rhs, rcond=None)
    if not np.allclose(kkt @ sol, rhs, atol=1e-9 * max(1.0, np.abs(rhs).max())):
        return None
    w = np.zeros(k)
    w[idx] = sol[:m]
    return w


def _objective(G: np.ndarray, b: np.ndarray, c: float, w: np.ndarray) -> float:
    return float(w @ G @ w - 2.0 * b @ w + c)


def simplex_least_squares(S: np.ndarray, s0: np.ndarray) -> np.ndarray:
    """Weights w (K,) on the probability simplex minimising ||S w − s0||₂.

    S: (d, K) — columns are the attribute vectors s_k; s0: (d,) the base vector. Returns float64 (K,), w ≥ 0,
    Σ w = 1. K = 1 returns [1].
    """
    S = np.asarray(S, dtype=np.float64)
    s0 = np.asarray(s0, dtype=np.float64).reshape(-1)
    if S.ndim != 2 or S.shape[0] != s0.shape[0] or S.shape[1] < 1:
        raise DataError(f"simplex least squares: S has shape {S.shape} and s0 {s0.shape}; expected (d, K) and (d,)")
    if not (np.isfinite(S).all() and np.isfinite(s0).all()):
        raise DataError("simplex least squares: score vectors contain NaN or inf")
    k = S.shape[1]
    if k == 1:
        return np.ones(1)
    # Rescale so the objective is O(1): the solution is invariant to a common scale of S and s0.
    scale = max(np.abs(S).max(), np.abs(s0).max(), 1e-300)
    S, s0 = S / scale, s0 / scale
    G, b, c = S.T @ S, S.T @ s0, float(s0 @ s0)
    return _solve_gram(G, b, c)


def _solve_gram(G: np.ndarray, b: np.ndarray, c: float) -> np.ndarray:
    k = len(b)
    if k == 2:
        return _solve_two(G, b)
    w0 = np.full(k, 1.0 / k)
    res = minimize(
        lambda w: _objective(G, b, c, w),
        w0,
        jac=lambda w: 2.0 * (G @ w - b),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * k,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
        options={"ftol": 1e-15, "maxiter": 500},
    )
    w = np.clip(res.x, 0.0, None)
    w = w / w.sum() if w.sum() > 0 else w0
    best, best_f = w, _objective(G, b, c, w)
    # Exact polish on the support SLSQP found (and on the support with tiny weights dropped).
    tol = 1e-7
    for support in (w > tol, w > 1e-4):
        if not support.any():
            continue
        cand = _support_solution(G, b, support)
        if cand is None or (cand < -1e-12).any():
            continue
        cand = np.clip(cand, 0.0, None)
        cand /= cand.sum()
        f = _objective(G, b, c, cand)
        if f <= best_f + 1e-14 * max(1.0, abs(best_f)):
            best, best_f = cand, f
    return best


def _solve_two(G: np.ndarray, b: np.ndarray) -> np.ndarray:
    """K = 2 in closed form: w = (a, 1 − a), a = clip(<s0 − s2, s1 − s2> / ||s1 − s2||², 0, 1)."""
    denom = G[0, 0] - 2.0 * G[0, 1] + G[1, 1]
    if denom <= 1e-300:
        return np.array([0.5, 0.5])
    a = (b[0] - b[1] - G[0, 1] + G[1, 1]) / denom
    a = float(np.clip(a, 0.0, 1.0))
    return np.array([a, 1.0 - a])


def simplex_least_squares_brute_force(S: np.ndarray, s0: np.ndarray) -> np.ndarray:
    """Reference solver for tests: try every support, keep the feasible KKT point with the lowest residual.

    Exponential in K (2^K − 1 supports); use only for small K.
    """
    S = np.asarray(S, dtype=np.float64)
    s0 = np.asarray(s0, dtype=np.float64)
    k = S.shape[1]
    G, b, c = S.T @ S, S.T @ s0, float(s0 @ s0)
    best, best_f = None, np.inf
    for mask in range(1, 2 ** k):
        support = np.array([(mask >> i) & 1 for i in range(k)], dtype=bool)
        w = _support_solution(G, b, support)
        if w is None or (w < -1e-10).any():
            continue
        f = _objective(G, b, c, w)
        if f < best_f:
            best, best_f = np.clip(w, 0.0, None), f
    return best / best.sum()
