"""Shared host-side (NumPy, float64) math of the generators: power-law spectra, random orthonormal
bases, matrix norms, and the spectral smoothness L_* = sup ||H[D]||_* / ||D||_op.

Everything here runs at construction time on the host, once per distinct instance; the oracles'
hot paths live in the problem classes and use the backend's ``xp``.

Background for L_* (Shen et al., "On the Convergence Analysis of Muon", arXiv 2505.23737;
PAPERS.md): Muon's rates are stated in the smoothness of the gradient from the spectral norm to its
dual, the nuclear norm. For a PSD Hessian operator H on m x n matrices, with p = min(m, n),

    L_* = sup_{||D||_op <= 1} ||H[D]||_*  =  sup_{||D||_op <= 1} <D, H[D]>            (1)

(the second form by Cauchy-Schwarz in the semi-inner product <., H .>, with equality at Z = D), and

    L <= L_* <= p L,     L = lambda_max(H)                                              (2)

(lower: D = the top eigen-matrix; upper: ||M||_* <= sqrt(p) ||M||_F and ||D||_F <= sqrt(p) ||D||_op).
(1) is a convex maximization over the spectral-norm ball, so its maximum sits at an extreme point
(a partial isometry) and ``polar_ascent`` climbs it monotonically: D <- polar(H[D]) maximizes the
linearization <H[D], .> over the ball (a conditional-gradient / power step).
"""

from __future__ import annotations

import numpy as np

from .params import ParamError


# --- spectra ----------------------------------------------------------------------------------
def power_law(size: int, alpha, kappa=0.0, count=None, names=("alpha", "kappa")) -> np.ndarray:
    """Descending spectra of shape (B, size): lambda_1 = 1 and

        lambda_j = (1 + c (j - 1))^-alpha,   j = 1..count_b,   zero beyond count_b,

    with c = 1 (the pure power law j^-alpha, condition number count^alpha) when kappa = 0, else
    c = (kappa^(1/alpha) - 1) / (count - 1), so that lambda_count = 1/kappa exactly (a shifted power
    law with exponent alpha and condition number kappa). ``alpha``, ``kappa``, ``count`` are scalars
    or per-run arrays; ``count`` defaults to ``size``. Errors name the offending parameter."""
    alpha = np.atleast_1d(np.asarray(alpha, np.float64))
    kappa = np.broadcast_to(np.asarray(kappa, np.float64), alpha.shape)
    count = np.broadcast_to(np.asarray(size if count is None else count, np.int64), alpha.shape)
    an, kn = names
    bad = (kappa != 0) & (kappa < 1)
    if bad.any():
        raise ParamError(f"{kn}: got {kappa[bad][0]:g}; allowed: 0 (pure power law) or a condition number >= 1")
    bad = (kappa > 1) & (alpha == 0)
    if bad.any():
        raise ParamError(
            f"{kn}: got {kappa[bad][0]:g} with {an} = 0 (a flat spectrum has condition number 1); use {an} > 0 or "
            f"{kn} = 0"
        )
    j = np.arange(size, dtype=np.float64)[None, :]  # j - 1
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        safe_a = np.where(alpha > 0, alpha, 1.0)
        c = np.where(kappa > 0, np.expm1(np.log(np.maximum(kappa, 1.0)) / safe_a) / np.maximum(count - 1, 1), 1.0)
    if not np.all(np.isfinite(c)):
        b = int(np.argmax(~np.isfinite(c)))
        raise ParamError(
            f"{kn}: {kn}^(1/{an}) overflows for {kn} = {kappa[b]:g}, {an} = {alpha[b]:g}; "
            f"use a larger {an} or a smaller {kn}"
        )
    lam = np.exp(-alpha[:, None] * np.log1p(c[:, None] * j))
    lam = np.where(j < count[:, None], lam, 0.0)
    check_finite(an, lam)
    return lam


def check_finite(name: str, arr, dtype=None) -> None:
    """Raise a ParamError naming ``name`` if generated data is NaN/inf in float64 or after a cast
    to ``dtype`` (e.g. an overflow to inf in float32)."""
    arr = np.asarray(arr)
    if not np.all(np.isfinite(arr)):
        raise ParamError(
            f"{name}: the generated data is not finite (NaN or inf) for this value; choose a smaller magnitude"
        )
    if dtype is not None:
        with np.errstate(over="ignore"):
            cast = arr.astype(dtype)
        if not np.all(np.isfinite(cast)):
            raise ParamError(
                f"{name}: the generated data overflows {np.dtype(dtype).name}; choose a smaller magnitude or dtype "
                "float64"
            )


# --- random bases -----------------------------------------------------------------------------
def random_orthonormal(rng: np.random.Generator, d: int, r: int | None = None) -> np.ndarray:
    """A Haar-distributed d x r matrix with orthonormal columns (r = d: an orthogonal matrix).

    QR of a Gaussian matrix with the signs of R's diagonal moved into Q (Mezzadri 2007), so the
    result is unique given the draw. The Gaussian is drawn column by column, so the first k
    columns are the same whatever r >= k is asked for (nested bases across ranks)."""
    r = d if r is None else r
    g = rng.standard_normal((r, d)).T
    q, rr = np.linalg.qr(g)
    s = np.sign(np.diag(rr))
    s[s == 0] = 1.0
    return q * s[None, :]


# --- norms and polar factor (batched over leading axes) ----------------------------------------
def nuclear(a: np.ndarray) -> np.ndarray:
    return np.linalg.svd(a, compute_uv=False).sum(axis=-1)


def op_norm(a: np.ndarray) -> np.ndarray:
    return np.linalg.svd(a, compute_uv=False)[..., 0]


def polar(a: np.ndarray) -> np.ndarray:
    """The polar factor U V^T of a = U S V^T (thin SVD): a maximizer of <a, D> over ||D||_op <= 1."""
    u, _, vt = np.linalg.svd(a, full_matrices=False)
    return u @ vt


def rect_eye(m: int, n: int) -> np.ndarray:
    return np.eye(m, n)


# --- operators on the host ---------------------------------------------------------------------
def dense_matrix(apply, m: int, n: int) -> np.ndarray:
    """The mn x mn matrix of a linear operator on m x n matrices, vec in row-major (C) order:
    column k is vec(apply(E_k)). ``apply`` maps (K, m, n) -> (K, m, n)."""
    basis = np.eye(m * n).reshape(m * n, m, n)
    return apply(basis).reshape(m * n, m * n).T


def top_eigvec(apply, m: int, n: int, rng: np.random.Generator, iters: int = 60) -> np.ndarray:
    """An approximate top eigen-matrix of a PSD operator by power iteration (a start for
    ``polar_ascent``; its quality does not affect the certification)."""
    d = rng.standard_normal((1, m, n))
    for _ in range(iters):
        d = apply(d)
        nrm = np.linalg.norm(d)
        if nrm == 0:
            break
        d = d / nrm
    return d[0]


def polar_ascent(
    apply, m: int, n: int, starts: np.ndarray, iters: int = 100, polish: int = 4000, keep: int = 2, rtol: float = 1e-14
):
    """Certified lower bound on L_* = sup_{||D||_op <= 1} ||H[D]||_* for a PSD operator H.

    From each start D_0 (K starts stacked, (K, m, n)), iterate D <- polar(H[D]): the objective
    <D, H[D]> of (1) never decreases (it is convex and each step maximizes its linearization over
    the ball). The convergence is linear but can be slow (rate close to 1 near a degenerate
    maximum), so all starts run ``iters`` steps and the ``keep`` best continue for up to
    ``polish`` steps, until the objective gains less than ``rtol`` (relative) in a step.
    Returns (value, D): the largest ratio ||H[D]||_* / ||D||_op seen over all iterates,
    computed exactly at an explicit D, hence a certified lower bound, and that D."""
    best = {"val": -np.inf, "d": None}

    def climb(d, steps):
        prev = None
        for _ in range(steps):
            hd = apply(d)
            vals = nuclear(hd) / np.maximum(op_norm(d), 1e-300)
            k = int(np.argmax(vals))
            if vals[k] > best["val"]:
                best["val"], best["d"] = float(vals[k]), d[k].copy()
            obj = np.einsum("kij,kij->k", d, hd)
            if prev is not None and np.all(obj - prev <= rtol * np.maximum(np.abs(obj), 1e-300)):
                break
            prev = obj
            d = polar(hd)
        return d, obj

    d, obj = climb(polar(np.asarray(starts, np.float64)), iters)
    climb(d[np.argsort(obj)[-keep:]], polish)
    return best["val"], best["d"]


def lstar_kronecker(a: np.ndarray, c: np.ndarray, mu=0.0) -> np.ndarray:
    """Exact L_* of H[D] = A D C + mu D for PSD A (eigenvalues a, (B, m)) and C (c, (B, n)) in
    any bases: sum_{k <= p} (a_(k) c_(k) + mu), both sorted descending, p = min(m, n).

    Upper bound: the singular values of A D C are weakly log-majorized by the products of those of
    A, D and C (Horn's inequality), hence weakly majorized, so ||A D C||_* <= sum_k a_(k) c_(k)
    ||D||_op, and ||mu D||_* <= mu p ||D||_op. Attained at D = Q_A[:, :p] Q_C[:, :p]^T, which
    aligns the top eigenvectors of both factors and makes both terms add up exactly."""
    p = min(a.shape[-1], c.shape[-1])
    a_s = -np.sort(-a, axis=-1)[..., :p]
    c_s = -np.sort(-c, axis=-1)[..., :p]
    return (a_s * c_s).sum(axis=-1) + p * np.asarray(mu, np.float64)


def schur_lstar_upper(w: np.ndarray) -> np.ndarray:
    """Upper bounds on L_* of a Schur (elementwise) multiplier D -> W o D with W >= 0, (B, m, n):
    the smaller of sum_i max_j W_ij and sum_j max_i W_ij. (||M||_* <= sum of the row norms of M,
    and row i of W o D has norm <= max_j W_ij ||row_i D||_2 <= max_j W_ij ||D||_op.) Exact for a
    single row/column support or a diagonal support."""
    return np.minimum(w.max(axis=2).sum(axis=1), w.max(axis=1).sum(axis=1))
