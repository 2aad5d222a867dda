"""A nonconvex function satisfying the Polyak-Lojasiewicz inequality with a known constant, for
the PL rate theorems of Muon-MVR (seed 000, arXiv 2509.15816; PAPERS.md).

    f(X) = sum_ij phi(Z_ij),   Z = P^T (X - X*) Q,   phi(z) = z^2 + a sin^2(z),
    grad f(X) = P phi'(Z) Q^T,  phi'(z) = 2 z + a sin(2 z),  phi''(z) = 2 + 2 a cos(2 z).

With a = 3 this is the one-dimensional example of Karimi, Nutini & Schmidt (2016) of a nonconvex PL
function, applied entrywise in random bases P, Q (``basis = rotated``) or the identity
(``aligned``). Because P, Q are orthogonal, ||grad f||_F = ||phi'(Z)||_F, so f is PL in the
Frobenius norm, 1/2 ||grad f||_F^2 >= mu (f - f*), with the constant of phi,

    mu = inf_{z != 0} phi'(z)^2 / (2 phi(z)),

computed on the host by a dense grid plus bounded refinement (``pl_constant``). phi' has no zero
besides 0 while a < ~4.6 (sin(2z) = -2z/a has no root), so ``amplitude`` is limited to [0, 4].
f* = 0 at X*; L = sup phi'' = 2 + 2a; the lowest curvature is 2 - 2a (< 0: nonconvex for a > 1),
reported as mu_sc; L_* = (2 + 2a) min(m, n) exactly (attained at X* with D = I, and
L_* <= min(m, n) L always). Entries of X* are Gaussian with RMS ``radius`` so that Z's entries
reach the nonconvex region (|z| ~ 1); runs start at X0 = 0.
"""

from __future__ import annotations

import functools

import numpy as np

from .base import Problem
from .linalg import op_norm, random_orthonormal
from .noise import noise_params
from .params import Param
from .registry import register

C_P, C_Q, C_XSTAR = 1, 2, 3


@functools.lru_cache(maxsize=256)
def pl_constant(a: float) -> float:
    """inf_{z > 0} phi'(z)^2 / (2 phi(z)) for phi(z) = z^2 + a sin^2 z (phi is even, so z > 0
    suffices). For z >= 20 the ratio is >= (2z - a)^2 / (2 (z^2 + a)) >= 1.6 > the minimum found
    on (0, 20] (<= 2, the a = 0 value), so the search interval is enough."""
    from scipy.optimize import minimize_scalar  # noqa: PLC0415 (construction-time only)

    def ratio(z):
        z = np.asarray(z, np.float64)
        return (2 * z + a * np.sin(2 * z)) ** 2 / (2 * (z * z + a * np.sin(z) ** 2))

    z = np.linspace(1e-3, 20.0, 200001)
    r = ratio(z)
    k = int(np.argmin(r))
    lo, hi = z[max(k - 1, 0)], z[min(k + 1, len(z) - 1)]
    res = minimize_scalar(ratio, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12})
    best = min(float(res.fun), float(r[k]))
    # the limit z -> 0 is 2 (1 + a) >= the values near 0 sampled above
    return best


@register("pl_sine")
class PLSine(Problem):
    """Nonconvex PL: sum of z^2 + a sin^2 z over the entries of P^T (X - X*) Q; known mu, L, L_*."""

    PARAMS = {
        "m": Param(16, int, per_run=False, low=1, doc="rows of X"),
        "n": Param(16, int, per_run=False, low=1, doc="columns of X"),
        "amplitude": Param(3.0, float, low=0.0, high=4.0, doc="a in phi(z) = z^2 + a sin^2 z (nonconvex for a > 1)"),
        "basis": Param(
            "rotated", str, per_run=False, choices=("aligned", "rotated"), doc="P = Q = I, or Haar-random P, Q"
        ),
        "radius": Param(
            2.0, float, low=0.0, low_open=True, doc="RMS of the entries of X* (distance scale of the start)"
        ),
        **noise_params(minibatch=False),
    }

    EXAMPLES = (
        dict(m=3, n=4, basis="aligned", amplitude=3.0),
        dict(m=4, n=2, basis="rotated", amplitude=1.0, noise="student_t", sigma=0.5, df=4),
        dict(m=1, n=3, radius=0.5, noise="gaussian", sigma=0.2),
    )

    def __init__(self, runs, seed, backend, **params):
        super().__init__(runs, seed, backend, **params)
        B, m, n = self.runs, self.params["m"], self.params["n"]
        self.m, self.n = m, n
        self.layer_shapes = ((m, n),)
        g = np.empty((B, m, n))
        rotated = self.params["basis"] == "rotated"
        p, q = (np.empty((B, m, m)), np.empty((B, n, n))) if rotated else (None, None)
        for s, _, idx in self.groups():
            g[idx] = self.host_rng(s, C_XSTAR).standard_normal((m, n))
            if rotated:
                p[idx] = random_orthonormal(self.host_rng(s, C_P), m)
                q[idx] = random_orthonormal(self.host_rng(s, C_Q), n)
        g *= (self.p("radius") * np.sqrt(m * n))[:, None, None] / np.linalg.norm(g, axis=(1, 2), keepdims=True)
        self.xstar_host = self.finite("radius", g)
        bk = backend
        self.xstar = bk.asarray(g)
        self.a = bk.asarray(self.p("amplitude")[:, None, None])
        self.P = None if p is None else bk.asarray(p)
        self.Pt = None if p is None else bk.asarray(np.ascontiguousarray(p.transpose(0, 2, 1)))
        self.Q = None if q is None else bk.asarray(q)
        self.Qt = None if q is None else bk.asarray(np.ascontiguousarray(q.transpose(0, 2, 1)))
        self.setup_noise()

    def _z(self, x):
        z = x - self.xstar
        if self.P is not None:
            z = self.xp.matmul(self.xp.matmul(self.Pt, z), self.Q)
        return z

    def loss(self, params):
        z = self._z(params[0])
        return (z * z + self.a * self.xp.sin(z) ** 2).sum(axis=(1, 2))

    gap = loss  # f* = 0

    def grad(self, params):
        z = self._z(params[0])
        g = 2 * z + self.a * self.xp.sin(2 * z)
        if self.P is not None:
            g = self.xp.matmul(self.xp.matmul(self.P, g), self.Qt)
        return (g,)

    def optimum(self):
        return (self.xstar,), self.backend.asarray(np.zeros(self.runs))

    def constants(self):
        a = self.p("amplitude")
        mn, p = self.m * self.n, min(self.m, self.n)
        L = 2 + 2 * a
        return {
            "L": L,
            "L_star": p * L,
            "L_star_low": p * L,
            "L_star_high": p * L,
            "L_star_exact": np.ones(self.runs),
            "mu": np.array([pl_constant(float(v)) for v in a]),
            "mu_sc": 2 - 2 * a,
            "hessian_rank": np.full(self.runs, float(mn)),
            "eff_rank": np.full(self.runs, float(mn)),
            "f_star": np.zeros(self.runs),
            "dist0_fro": np.linalg.norm(self.xstar_host, axis=(1, 2)),
            "dist0_op": op_norm(self.xstar_host),
            "noise_var_opt": self.p("sigma") ** 2,
        }

    @classmethod
    def run_bytes(cls, params, itemsize):
        m, n = params.get("m", 16), params.get("n", 16)
        return itemsize * (16 * m * n + 2 * (m * m + n * n))
