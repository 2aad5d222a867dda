"""A convex, Lipschitz, nonsmooth objective that depends only on the diagonal of X (plus optional
off-diagonal terms that vanish on diagonal X): the class on which Muon's iterates are exactly
those of signed momentum (Parshakova et al., "Muon does not converge on convex Lipschitz
functions", arXiv 2605.08980; PAPERS.md).

    f(X) = sum_i |(A d)_i - c_i| + lam * sum_{i != j} |X_ij|,     d = diag(X) in R^k, k = min(m, n)

A = I by default (f = sum_i |X_ii - c_i|). With ``coupled``, consecutive diagonal entries are
paired: the rows of A for the pair (d_2j, d_2j+1) are (1, -1) and (eps, eps), so the pair enters
as |d_2j - d_2j+1 - c_2j| + |eps (d_2j + d_2j+1) - c_2j+1| (an odd last entry stays |d_k - c_k|).
For eps < 1 the subgradients near the kink d_2j = d_2j+1 alternate between (1 + eps, -1 + eps)
and (-1 + eps, 1 + eps), whose signs never move d_2j + d_2j+1: sign descent (and signed
momentum whose average does not resolve the eps part) stalls at a gap of order
eps |d*_2j + d*_2j+1|, whatever the learning-rate schedule, while (sub)gradient methods and error
feedback converge. The minimizer X* = diag(d*) is drawn from the seed with ||d*||_2 = ``dist``;
c = A d*, so f* = 0. X0 = 0, or ``init_scale`` G / sqrt(m n) with G standard normal (then not
diagonal). Exact oracle (``sample`` returns None).

Subgradient at exact kinks (``kink``; floating point hits them exactly, e.g. 883 of 20,000 steps of
a single-pair sign-descent run, issue 12). The subdifferential of |r| at r = 0 is [-1, 1]; a
lower bound for a class may use any selection from it, and the worst case for sign-type methods
is the one that keeps every step off the eps part:

``adversarial`` (default)  s_i = +1 where the residual r_i = (A d - c)_i is exactly 0 (the right
    derivative). In a coupled pair at the kink d_2j - d_2j+1 = c_2j the subgradient is then
    (1 + eps s', -1 + eps s') with |s'| <= 1 and eps < 1, whose signs (+1, -1) leave the pair sum
    unchanged, exactly as off the kink: sign descent and Muon (signed momentum here) never move
    d_2j + d_2j+1 through a kink either. A lone entry at its kink is pushed off by one step.
``zero``  sign(0) = 0 (the lab's oracle before issue 12): at the kink the subgradient is
    (eps s', eps s'), whose signs move the pair sum toward d*: the iterates escape the floor
    through exact kinks, so this oracle is not the worst case of the class.

Either way the off-diagonal term's subgradient at X_ij = 0 is 0 (an element of lam [-1, 1]), so
iterates that start diagonal stay diagonal and Muon is exactly signed momentum (arXiv 2605.08980;
PAPERS.md: "a lower-bound construction needs the adversarial subgradient choice at kinks"). The
paper's own kink convention could not be read (its full text was not in the lab's search
corpora; only abstracts and summaries were): the adversarial rule above is derived from this
instance's structure, not copied from the construction.
"""

from __future__ import annotations

import numpy as np

from .backend import host_rng

from .base import Problem
from .params import Param
from .registry import register


KINKS = ("adversarial", "zero")


@register("diagonal_abs")
class DiagonalAbs(Problem):
    """Convex Lipschitz nonsmooth: sum_i |(A diag X)_i - c_i| + off-diagonal l1 (Muon = signed momentum)."""

    PARAMS = {
        "m": Param(16, int, per_run=False, low=1, doc="rows of X"),
        "n": Param(16, int, per_run=False, low=1, doc="columns of X"),
        "coupled": Param(
            False, bool, per_run=False, doc="pair the diagonal entries (rows (1, -1) and (eps, eps) of A)"
        ),
        "eps": Param(0.05, float, low=0.0, high=1.0, low_open=True, doc="weight of the pair-sum term when coupled"),
        "offdiag": Param(0.0, float, low=0.0, doc="lam: weight of sum_{i != j} |X_ij|"),
        "dist": Param(1.0, float, low=0.0, low_open=True, doc="||X*||_F = ||d*||_2"),
        "init_scale": Param(0.0, float, low=0.0, doc="X0 = init_scale G / sqrt(m n) (0: X0 = 0, diagonal)"),
        "kink": Param(
            "adversarial",
            str,
            per_run=False,
            choices=KINKS,
            doc="subgradient of |r| at an exact kink r = 0: adversarial (+1) or zero (sign(0) = 0)",
        ),
    }

    EXAMPLES = (
        dict(m=4, n=3),
        dict(m=5, n=5, coupled=True, eps=0.3, offdiag=0.5, init_scale=1.0),
        dict(m=4, n=4, coupled=True, kink="zero"),
    )

    def __init__(self, runs, seed, backend, **params):
        super().__init__(runs, seed, backend, **params)
        B, m, n = self.runs, self.params["m"], self.params["n"]
        k = min(m, n)
        self.m, self.n, self.k = m, n, k
        self.layer_shapes = ((m, n),)
        eps = self.p("eps")
        a = np.broadcast_to(np.eye(k), (B, k, k)).copy()
        if self.params["coupled"]:
            for j in range(0, k - 1, 2):
                a[:, j, j], a[:, j, j + 1] = 1.0, -1.0
                a[:, j + 1, j], a[:, j + 1, j + 1] = eps, eps
        dstar = np.empty((B, k))
        for s in np.unique(self.seeds):
            z = host_rng(s, self.instance_key).standard_normal(k)
            dstar[self.seeds == s] = z / np.linalg.norm(z)
        dstar *= self.p("dist")[:, None]
        self.a_host, self.dstar_host = a, dstar
        c = np.einsum("bij,bj->bi", a, dstar)
        xstar = np.zeros((B, m, n))
        xstar[:, np.arange(k), np.arange(k)] = dstar
        bk = backend
        self.a = bk.asarray(a)
        self.at = bk.asarray(np.ascontiguousarray(a.transpose(0, 2, 1)))
        self.c = bk.asarray(c)
        self.xstar = bk.asarray(xstar)
        self.lam = bk.asarray(self.p("offdiag")[:, None, None])
        self.off = bk.asarray(1.0 - np.eye(m, n)[None])
        self.idx = self.index(np.arange(k))

    def _residual(self, params):
        d = self.xp.linalg.diagonal(params[0])
        return self.xp.matmul(self.a, d[..., None])[..., 0] - self.c

    def init(self, rng):
        x0 = self.backend.zeros((self.runs, self.m, self.n))
        scale = self.p("init_scale")
        if np.any(scale > 0):
            g = rng.normal((self.m, self.n))
            x0 = x0 + g * self.backend.asarray(scale[:, None, None] / np.sqrt(self.m * self.n))
        return (x0,)

    def loss(self, params):
        xp = self.xp
        return xp.abs(self._residual(params)).sum(axis=1) + (self.lam * xp.abs(params[0]) * self.off).sum(axis=(1, 2))

    def gap(self, params):
        return self.loss(params)

    def grad(self, params):
        xp = self.xp
        r = self._residual(params)
        s = xp.sign(r)
        if self.params["kink"] == "adversarial":
            s = xp.where(r == 0, xp.ones_like(s), s)
        g = self.lam * xp.sign(params[0]) * self.off
        g[:, self.idx, self.idx] = xp.matmul(self.at, s[..., None])[..., 0]
        return (g,)

    def optimum(self):
        return (self.xstar,), self.backend.zeros(self.runs)

    def constants(self):
        k, mn = self.k, self.m * self.n
        a_op = np.linalg.norm(self.a_host, ord=2, axis=(1, 2))
        lam = self.p("offdiag")
        return {
            "f_star": np.zeros(self.runs),
            "mu": np.zeros(self.runs),
            # sup ||G||_F over subgradients: ||A^T s||^2 + lam^2 (mn - k) <= k ||A||_2^2 + ...
            # (an upper bound; exact when A = I)
            "lipschitz_fro": np.sqrt(k * a_op**2 + lam**2 * (mn - k)),
            "dist0_fro": np.linalg.norm(self.dstar_host, axis=1),  # ||X0 - X*||_F for X0 = 0
            "eps_floor": self.eps_floor(),
        }

    def eps_floor(self) -> np.ndarray:
        """eps * sum_j |d*_2j + d*_2j+1| per run (0 unless ``coupled``): the pair-sum part of the
        gap, which sign descent cannot remove (module docstring; arXiv 2605.08980)."""
        d, k = self.dstar_host, self.k
        if not self.params["coupled"] or k < 2:
            return np.zeros(self.runs)
        pairs = d[:, 0 : k - 1 : 2] + d[:, 1:k:2]
        return self.p("eps") * np.abs(pairs).sum(axis=1)

    @classmethod
    def run_bytes(cls, params, itemsize):
        m, n = params.get("m", 16), params.get("n", 16)
        k = min(m, n)
        return itemsize * (16 * m * n + 4 * k * k)
