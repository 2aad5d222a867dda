"""Quadratics with a chosen Hessian structure:

    f(X) = 1/2 <X - X*, H[X - X*]> + f*,      grad f(X) = H[X - X*],      X of shape (m, n),

the setting in which Shen et al. (arXiv 2505.23737; PAPERS.md) compare Muon with GD through the
Frobenius smoothness L = lambda_max(H) and the spectral smoothness L_* = sup ||H[D]||_* / ||D||_op:
Muon gains when L_* is far below min(m, n) L (low-rank, approximately block-diagonal Hessians).

``hessian`` picks H (each a registered builder in ``HESSIANS``; operators in
:mod:`problems.hessians`):

- ``kronecker``: H[D] = A D C + mu D, A = P diag(a) P^T (m x m), C = Q diag(c) Q^T (n x n), with
  power-law spectra a (alpha, kappa) and c (alpha_right, kappa_right); ``basis = aligned`` takes
  P = Q = I (H diagonal in the entries), ``rotated`` Haar-random P, Q. L_* is exact.
- ``low_rank``: rank r with the power-law spectrum (alpha, kappa) over its r eigenvalues, plus the
  ridge mu I. ``basis = random``: Haar-random eigenvectors in vec-space (eigen-matrices of full
  matrix rank); ``aligned``: eigen-matrices e_i e_j^T at r random entries (H diagonal);
  ``rotated``: P e_i e_j^T Q^T (rank-one eigen-matrices in random bases).
- ``block``: block-diagonal over a grid of ``blocks`` tiles (``layout`` rows, cols or tiles),
  each tile its own Kronecker operator in random bases, mixed with a global Kronecker operator
  (power laws alpha/kappa, alpha_right/kappa_right) by ``coupling``. The tiles split the global
  factor spectra between them (interleaved), so c = 0 and c = 1 have the same eigenvalues.
  In between, the mixture's top eigenvalue dips (to ~0.54 of the end points' at c = 0.5, 16 x 16,
  alpha = 1.5); ``block_norm = "L"`` rescales the mixture (mu apart) so that L is the end points'
  L at every coupling (the coupling then moves the structure, not the step-size scale; the
  trace, fixed under ``"none"``, then grows by the same factor).
- ``dense``: the ``low_rank`` construction (any rank, any basis) formed as an explicit
  mn x mn matrix; refused above m*n = 1024.

X* is Gaussian with ||X*||_F = 1, projected onto range(H) when H is singular (so X* is the
minimizer nearest X0 = 0); the runs start at X0 = 0.
"""

from __future__ import annotations

import math

import numpy as np

from .base import Problem
from .hessians import BlockH, DenseH, EigH, FactoredH, _unique_rows
from .linalg import op_norm, power_law, random_orthonormal
from .noise import noise_params
from .params import Param, ParamError
from .registry import Registry, register

# random components of an instance (host_rng streams); fixed numbers, never reuse one
C_P, C_Q, C_SUPPORT, C_U, C_XSTAR, C_BLOCK, C_GLOBAL = 1, 2, 3, 4, 5, 6, 7

BLOCK_NORMS = ("none", "L")  # normalizations of the block mixture (block_norm)
SPECTRUM = ("alpha", "alpha_right", "kappa", "kappa_right", "mu")
HESSIANS = Registry("hessian", "Hessian builder")  # name -> (builder, used variant parameters, allowed bases)


def hessian(name: str, uses: tuple, bases: tuple):
    """Register a Hessian builder ``fn(problem) -> Operator``; ``uses``: the variant-specific
    parameters it reads (the others must stay at their defaults); ``bases``: allowed ``basis``."""

    def deco(fn):
        HESSIANS.add(name, (fn, set(uses), bases))
        return fn

    return deco


VARIANT_PARAMS = ("alpha_right", "kappa_right", "rank", "blocks", "layout", "coupling", "block_norm")


@register("quadratic")
class Quadratic(Problem):
    """Quadratic 1/2 <X - X*, H[X - X*]> + f* with Hessian structure kronecker | low_rank | block | dense."""

    PARAMS = {
        "m": Param(16, int, per_run=False, low=1, doc="rows of X"),
        "n": Param(16, int, per_run=False, low=1, doc="columns of X"),
        "hessian": Param(
            "kronecker",
            str,
            per_run=False,
            choices=("kronecker", "low_rank", "block", "dense"),
            doc="Hessian structure",
        ),
        "basis": Param(
            "rotated",
            str,
            per_run=False,
            choices=("aligned", "rotated", "random"),
            doc="eigenbasis: aligned (H diagonal in the entries), rotated (rank-one eigen-matrices "
            "in random bases), random (Haar in vec-space; low_rank and dense only)",
        ),
        "alpha": Param(1.0, float, low=0.0, doc="power-law exponent of the spectrum (left factor for kronecker/block)"),
        "alpha_right": Param(1.0, float, low=0.0, doc="exponent of the right factor's spectrum (kronecker/block)"),
        "kappa": Param(
            0.0, float, low=0.0, doc="condition number of the spectrum (left factor); 0 = pure power law j^-alpha"
        ),
        "kappa_right": Param(
            0.0, float, low=0.0, doc="condition number of the right factor (kronecker/block); 0 = pure power law"
        ),
        "rank": Param(0, int, low=0, doc="Hessian rank r (low_rank/dense); 0 = full rank m*n"),
        "mu": Param(0.0, float, low=0.0, doc="ridge: H + mu I"),
        "blocks": Param(4, int, per_run=False, low=1, doc="number of diagonal blocks (block)"),
        "layout": Param(
            "rows",
            str,
            per_run=False,
            choices=("rows", "cols", "tiles"),
            doc="blocks of consecutive rows, of columns, or a sqrt(k) x sqrt(k) grid of tiles (block)",
        ),
        "coupling": Param(
            0.0, float, low=0.0, high=1.0, doc="off-block coupling in [0, 1]; 0 = exactly block-diagonal (block)"
        ),
        "f_star": Param(0.0, float, doc="optimal value f*"),
        **noise_params(minibatch=False),
        "block_norm": Param(
            "none",
            str,
            per_run=False,
            choices=BLOCK_NORMS,
            doc="block: 'none' (the plain mixture) or 'L' (rescaled: the same L at every coupling)",
        ),
    }

    EXAMPLES = (  # small valid instances covering every hessian and basis, and both additive noises
        dict(m=4, n=3, hessian="kronecker", basis="aligned", alpha=1.0, alpha_right=0.5, kappa=10.0, mu=0.01),
        dict(m=3, n=5, hessian="kronecker", basis="rotated", noise="gaussian", sigma=0.5),
        dict(m=4, n=4, hessian="low_rank", basis="random", rank=5, noise="student_t", sigma=0.3),
        dict(m=1, n=4, hessian="low_rank", basis="aligned", rank=2, mu=0.1),
        dict(m=3, n=3, hessian="low_rank", basis="rotated", rank=4, alpha=2.0),
        dict(m=4, n=6, hessian="block", blocks=2, layout="rows", coupling=0.3),
        dict(m=4, n=4, hessian="block", blocks=4, layout="tiles", noise="gaussian", sigma=0.2),
        dict(m=2, n=6, hessian="block", blocks=3, layout="cols", coupling=1.0),
        dict(m=4, n=4, hessian="block", blocks=2, layout="rows", coupling=0.5, block_norm="L", mu=0.05),
        dict(m=3, n=4, hessian="dense", basis="random"),
    )

    def __init__(self, runs, seed, backend, **params):
        super().__init__(runs, seed, backend, **params)
        m, n = self.m, self.n = self.params["m"], self.params["n"]
        self.layer_shapes = ((m, n),)
        name = self.params["hessian"]
        build, uses, bases = HESSIANS.get(name)
        self.unused(f"hessian = {name!r}", *(k for k in VARIANT_PARAMS if k not in uses))
        if self.params["basis"] not in bases:
            raise ParamError(
                f"basis: got {self.params['basis']!r} with hessian = {name!r}; allowed: {', '.join(bases)}"
            )
        self.op = build(self)
        # target: Gaussian, projected onto range(H), unit Frobenius norm
        g = np.empty((self.runs, m, n))
        for s, _, idx in self.groups():
            g[idx] = self.host_rng(s, C_XSTAR).standard_normal((m, n))
        x = self.op.project_range(g)
        x /= np.linalg.norm(x, axis=(1, 2), keepdims=True)
        self.xstar_host = self.finite("alpha", x)
        self.xstar = backend.asarray(x)
        self.fstar = self.p("f_star")
        self.setup_noise()

    # --- helpers for builders ---------------------------------------------------------------------
    def bases(self, comp_p, comp_q, m, n):
        """Per-run Haar bases (B, m, m), (B, n, n) drawn per unique seed."""
        p, q = np.empty((self.runs, m, m)), np.empty((self.runs, n, n))
        for s, _, idx in self.groups():
            p[idx] = random_orthonormal(self.host_rng(s, comp_p), m)
            q[idx] = random_orthonormal(self.host_rng(s, comp_q), n)
        return p, q

    def rank_per_run(self):
        mn = self.m * self.n
        r = self.p("rank", np.int64)
        if np.any(r > mn):
            raise ParamError(f"rank: got {int(r.max())}; allowed: an integer <= m*n = {mn} (0 = full rank)")
        return np.where(r == 0, mn, r)

    # --- the contract -----------------------------------------------------------------------------
    def grad(self, params):
        return (self.op.apply(params[0] - self.xstar),)

    def gap(self, params):
        e = params[0] - self.xstar
        return 0.5 * (e * self.op.apply(e)).sum(axis=(1, 2))

    def loss(self, params):
        return self.gap(params) + self.backend.asarray(self.fstar)

    def optimum(self):
        return (self.xstar,), self.backend.asarray(self.fstar)

    def constants(self):
        if not hasattr(self, "_constants"):
            out = dict(self.op.truth())
            out["f_star"] = self.fstar.copy()
            out["dist0_fro"] = np.linalg.norm(self.xstar_host, axis=(1, 2))
            out["dist0_op"] = op_norm(self.xstar_host)
            out["noise_var_opt"] = self.p("sigma") ** 2
            self._constants = out
        return {k: v.copy() for k, v in self._constants.items()}

    @classmethod
    def run_bytes(cls, params, itemsize):
        m, n = params.get("m", 16), params.get("n", 16)
        mn = m * n
        h = params.get("hessian", "kronecker")
        basis = params.get("basis", "rotated")
        if h == "dense" or (h == "low_rank" and basis == "random"):
            op = mn * mn  # explicit matrix, or U padded to at most mn columns
        else:
            op = 2 * (m * m + n * n) + 2 * mn
        return itemsize * (16 * mn + op)


# --- Hessian builders (registry) -------------------------------------------------------------------
@hessian("kronecker", uses=("alpha_right", "kappa_right"), bases=("aligned", "rotated"))
def _kronecker(pb: Quadratic):
    a = power_law(pb.m, pb.p("alpha"), pb.p("kappa"), names=("alpha", "kappa"))
    c = power_law(pb.n, pb.p("alpha_right"), pb.p("kappa_right"), names=("alpha_right", "kappa_right"))
    w = a[:, :, None] * c[:, None, :]
    p = q = None
    if pb.params["basis"] == "rotated":
        p, q = pb.bases(C_P, C_Q, pb.m, pb.n)
    return FactoredH(pb.backend, pb.finite("alpha", w), pb.p("mu"), p, q, factors=(a, c))


def _vec_spectrum(pb: Quadratic):
    """(B, mn) spectrum: the power law over each run's rank, zeros beyond; and the ranks."""
    r = pb.rank_per_run()
    lam = power_law(pb.m * pb.n, pb.p("alpha"), pb.p("kappa"), count=r)
    return pb.finite("alpha", lam), r


def _low_rank_op(pb: Quadratic):
    lam, r = _vec_spectrum(pb)
    m, n, B = pb.m, pb.n, pb.runs
    mu = pb.p("mu")
    if pb.params["basis"] == "random":
        rmax = int(r.max())
        seeds, index = np.unique(pb.seeds, return_inverse=True)
        u = np.stack([random_orthonormal(pb.host_rng(s, C_U), m * n, rmax) for s in seeds])
        return EigH(pb.backend, m, n, u, index.reshape(-1), lam[:, :rmax], mu)
    # aligned / rotated: the r eigenvalues sit at the first r entries of a random permutation of
    # the m*n positions (nested: rank r's support is contained in rank r+1's)
    w = np.zeros((B, m * n))
    for s, _, idx in pb.groups():
        perm = pb.host_rng(s, C_SUPPORT).permutation(m * n)
        w[np.ix_(idx, perm)] = lam[idx]
    p = q = None
    if pb.params["basis"] == "rotated":
        p, q = pb.bases(C_P, C_Q, m, n)
    return FactoredH(pb.backend, w.reshape(B, m, n), mu, p, q)


@hessian("low_rank", uses=("rank",), bases=("random", "aligned", "rotated"))
def _low_rank(pb: Quadratic):
    return _low_rank_op(pb)


@hessian("dense", uses=("rank",), bases=("random", "aligned", "rotated"))
def _dense(pb: Quadratic):
    mn = pb.m * pb.n
    if mn > DenseH.MAX_ENTRIES:
        raise ParamError(
            f"hessian: 'dense' forms an explicit (m*n) x (m*n) matrix and allows m*n <= {DenseH.MAX_ENTRIES}, "
            f"got m*n = {pb.m}*{pb.n} = {mn}; use hessian = 'low_rank' (matrix-free) instead"
        )
    return DenseH(pb.backend, _low_rank_op(pb))


BLOCK_USES = ("alpha_right", "kappa_right", "blocks", "layout", "coupling", "block_norm")


@hessian("block", uses=BLOCK_USES, bases=("rotated",))
def _block_normalized(pb: Quadratic):
    """The block mixture (:func:`_block`), rescaled per run when ``block_norm = "L"``: every term
    but the ridge mu is multiplied by s = (L_end - mu) / (lambda_max(H) - mu), L_end = a_1 c_1 + mu
    the top eigenvalue shared by c = 0 and c = 1, so lambda_max = L_end at every coupling (s = 1 at
    both ends; s >= 1 in between, since the top eigenvalue of a convex mix is at most the ends')."""
    op = _block(pb)
    if pb.params["block_norm"] == "none":
        return op
    ea, ec, ga, gc = op.eigs
    mu = op.mu_host
    top = np.empty(pb.runs)
    for b, idx in _unique_rows(op.coupling_host[:, None], mu[:, None], *op.host.values()):
        top[idx] = op.eigenvalues_host(b).max()
    s = (ga.max(axis=1) * gc.max(axis=1)) / (top - mu)
    h = op.host
    return BlockH(
        pb.backend,
        op.grid,
        pb.m,
        pb.n,
        h["a_blk"] * s[:, None, None, None],
        h["c_blk"],
        h["a_glob"] * s[:, None, None],
        h["c_glob"],
        (ea * s[:, None, None], ec, ga * s[:, None], gc),
        op.coupling_host,
        mu,
    )


def block_grid(layout: str, k: int, m: int, n: int) -> tuple[int, int]:
    """(kr, kc): the tile grid of ``blocks = k`` for ``layout``; errors name ``blocks``."""
    if layout == "rows":
        grid = (k, 1)
    elif layout == "cols":
        grid = (1, k)
    else:
        q = math.isqrt(k)
        if q * q != k:
            raise ParamError(f"blocks: got {k} with layout = 'tiles'; allowed: a square number (a q x q grid of tiles)")
        grid = (q, q)
    if m % grid[0] or n % grid[1]:
        raise ParamError(
            f"blocks: got {k} with layout = {layout!r}; the {grid[0]} x {grid[1]} grid of tiles must divide "
            f"X's shape {m} x {n}"
        )
    return grid


def _block(pb: Quadratic):
    m, n, B = pb.m, pb.n, pb.runs
    grid = block_grid(pb.params["layout"], pb.params["blocks"], m, n)
    k, mb, nb = grid[0] * grid[1], m // grid[0], n // grid[1]
    alpha, kappa, alpha_r, kappa_r = pb.p("alpha"), pb.p("kappa"), pb.p("alpha_right"), pb.p("kappa_right")
    ga = pb.finite("alpha", power_law(m, alpha, kappa, names=("alpha", "kappa")))
    gc = pb.finite("alpha_right", power_law(n, alpha_r, kappa_r, names=("alpha_right", "kappa_right")))
    # tile (r, c) takes every kr-th value of the global left spectrum from r and every kc-th of the
    # right one from c: the tiles split the global spectra, so the block-diagonal operator has the
    # same eigenvalues as the global one and only the block structure differs
    rr, cc = np.divmod(np.arange(k), grid[1])
    ea_k = np.stack([ga[:, r :: grid[0]] for r in rr], axis=1)  # (B, k, mb)
    ec_k = np.stack([gc[:, c :: grid[1]] for c in cc], axis=1)  # (B, k, nb)
    pa, pc = np.empty((B, k, mb, mb)), np.empty((B, k, nb, nb))
    qa, qc = np.empty((B, m, m)), np.empty((B, n, n))
    for s, _, idx in pb.groups():
        rng = pb.host_rng(s, C_BLOCK)
        pa[idx] = np.stack([random_orthonormal(rng, mb) for _ in range(k)])
        pc[idx] = np.stack([random_orthonormal(rng, nb) for _ in range(k)])
        rng = pb.host_rng(s, C_GLOBAL)
        qa[idx], qc[idx] = random_orthonormal(rng, m), random_orthonormal(rng, n)

    def sym(basis, eig):  # basis diag(eig) basis^T, batched
        return np.matmul(basis * eig[..., None, :], np.swapaxes(basis, -1, -2))

    return BlockH(
        pb.backend,
        grid,
        m,
        n,
        sym(pa, ea_k),
        sym(pc, ec_k),
        sym(qa, ga),
        sym(qc, gc),
        (ea_k, ec_k, ga, gc),
        pb.p("coupling"),
        pb.p("mu"),
    )
