"""Matrix least squares over an explicit data matrix (the benchmark's workload W, docs/benchmarks.md).

Each run has its own data A (n x N), rows scaled so the sample covariance has a power-law spectrum
(row j of A is j^(-alpha/2) times standard normal entries), a target X* with ||X*||_F = 1 and
labels Y = X* A + label_noise / sqrt(m) E (E standard normal, m x N):

    f(X) = ||X A - Y||_F^2 / (2N),      grad f(X) = (X A - Y) A^T / N,
    f* = f(X^), X^ = the least-squares solution (minimum norm when N < n),
    f(X) - f* = 1/2 tr((X - X^) S (X - X^)^T),  S = A A^T / N.

The oracle is the exact full-batch gradient, computed from the data as written (two matmuls of
m x n x N each), which is what makes it a stand-in for a layer's gradient in training.
"""

from __future__ import annotations

import numpy as np

from .backend import host_rng

from .base import Problem
from .params import Param
from .registry import register


@register("sample_lsq")
class SampleLSQ(Problem):
    """Least squares ||X A - Y||^2 / 2N with explicit data A (n x N); full-batch gradient."""

    PARAMS = {
        "m": Param(64, int, per_run=False, low=1, doc="rows of X (outputs)"),
        "n": Param(64, int, per_run=False, low=1, doc="columns of X (input dimension)"),
        "samples": Param(256, int, per_run=False, low=1, doc="N, columns of the data matrix A"),
        "alpha": Param(0.0, float, low=0.0, doc="row j of A is scaled by j^(-alpha/2)"),
        "label_noise": Param(0.0, float, low=0.0, doc="label noise: E||Y - X* A||_F^2 / N = label_noise^2"),
    }

    EXAMPLES = (
        dict(m=3, n=4, samples=10, alpha=1.0, label_noise=0.3),
        dict(m=2, n=6, samples=4),
    )

    def __init__(self, runs, seed, backend, **params):
        super().__init__(runs, seed, backend, **params)
        B, m, n, N = self.runs, self.params["m"], self.params["n"], self.params["samples"]
        self.m, self.n, self.samples = m, n, N
        self.layer_shapes = ((m, n),)
        scale = np.arange(1, n + 1, dtype=np.float64)[None, :] ** (-0.5 * self.p("alpha")[:, None])  # (B, n)
        noise = self.p("label_noise")
        z = np.empty((B, n, N))
        e = np.empty((B, m, N))
        c = np.empty((B, m, n))
        for s in np.unique(self.seeds):  # an instance depends only on its seed (and parameters)
            rng = host_rng(s, self.instance_key)
            idx = self.seeds == s
            z[idx], c[idx], e[idx] = (
                rng.standard_normal((n, N)),
                rng.standard_normal((m, n)),
                rng.standard_normal((m, N)),
            )
        a = z * scale[:, :, None]
        xstar = c / np.linalg.norm(c, axis=(1, 2), keepdims=True)
        y = xstar @ a + (noise / np.sqrt(m))[:, None, None] * e
        # least-squares solution X^ = Y A^+ (host, float64), its loss f* and the curvature S
        xhat = np.stack([np.linalg.lstsq(ai.T, yi.T, rcond=None)[0].T for ai, yi in zip(a, y)])
        res = xhat @ a - y
        self.f_star = 0.5 * (res * res).sum(axis=(1, 2)) / N
        self.cov = a @ a.transpose(0, 2, 1) / N  # (B, n, n) host float64
        self.xhat_fro = np.linalg.norm(xhat, axis=(1, 2))
        bk = backend
        self.a = bk.asarray(a)
        self.at_n = bk.asarray(np.ascontiguousarray(a.transpose(0, 2, 1)) / N)  # A^T / N, (B, N, n)
        self.y = bk.asarray(y)
        self.xhat = bk.asarray(xhat)
        self.s = bk.asarray(self.cov)

    def take(self, idx):
        """The sub-batch of runs ``idx`` (what rebuilding them from their seeds and parameters
        would give, without redrawing the data; the run loop's lanes use it)."""
        idx = np.asarray(idx)
        sub = object.__new__(type(self))
        sub.__dict__.update(self.__dict__)
        sub.runs, sub.seeds = len(idx), self.seeds[idx]
        sub.params = {
            k: v[idx] if isinstance(v, np.ndarray) and v.shape == (self.runs,) else v for k, v in self.params.items()
        }
        for k in ("f_star", "cov", "xhat_fro"):
            setattr(sub, k, getattr(self, k)[idx])
        dev = self.index(idx)
        for k in ("a", "at_n", "y", "xhat", "s"):
            setattr(sub, k, getattr(self, k)[dev])
        return sub

    def gap(self, params):
        d = params[0] - self.xhat
        return 0.5 * (self.xp.matmul(d, self.s) * d).sum(axis=(1, 2))

    def loss(self, params):
        return self.gap(params) + self.backend.asarray(self.f_star)

    def grad(self, params):
        xp = self.xp
        r = xp.matmul(params[0], self.a)  # (B, m, N)
        r -= self.y
        return (xp.matmul(r, self.at_n),)

    def optimum(self):
        return (self.xhat,), self.backend.asarray(self.f_star)

    def constants(self):
        ev = np.linalg.eigvalsh(self.cov)  # ascending, (B, n)
        k = min(self.m, self.n)
        tol = ev[:, -1:] * self.n * np.finfo(np.float64).eps
        return {
            "L": ev[:, -1],
            "L_star": ev[:, ::-1][:, :k].sum(axis=1),
            "mu": np.where(ev[:, 0] > tol[:, 0], ev[:, 0], 0.0),
            "hessian_rank": self.m * (ev > tol).sum(axis=1).astype(np.float64),
            "f_star": self.f_star,
            "dist0_fro": self.xhat_fro,
        }

    @classmethod
    def run_bytes(cls, params, itemsize):
        m, n, N = params.get("m", 64), params.get("n", 64), params.get("samples", 256)
        return itemsize * (2 * n * N + 3 * m * N + n * n + 16 * m * n)
