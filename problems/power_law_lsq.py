"""Matrix least squares with a power-law data covariance and a power-law target.

Inputs x ~ N(0, Sigma), Sigma = Q diag(lambda) Q^T with lambda_j = j^-alpha (j = 1..n) and Q = I,
or a random orthonormal basis when ``rotate``; labels y = X* x + eps with E||eps||^2 = s^2.
The target's coefficients in the eigenbasis decay as j^-beta: X* = C Q^T with C_ij = g_ij j^-beta,
g_ij ~ N(0, 1), scaled so ||X*||_F = 1 for every beta. The power-law data/target setting is that of
Paquette et al., "Phases of Muon" (arXiv 2605.09552) and "4+3 phases" (2024), see PAPERS.md.

    f(X) = 1/2 E||X x - y||^2 = 1/2 tr((X - X*) Sigma (X - X*)^T) + s^2 / 2
    grad f(X) = (X - X*) Sigma,        f* = s^2 / 2 at X = X*.

The Hessian is the Kronecker operator D -> D Sigma (:class:`problems.hessians.FactoredH` with
W = 1 lambda^T), so L, L_* and mu are exact.

Oracle (:mod:`problems.noise`): ``noise = minibatch`` averages (X x_i - y_i) x_i^T over
``batch_size`` samples (a draw holds the standard normal variates, so the same draw can be
evaluated at two points). The label-noise variance is s^2 = label_noise^2 + sigma^2 b / tr(Sigma):
the minibatch gradient at X* is -(1/b) sum_i eps_i x_i^T with E||.||_F^2 = s^2 tr(Sigma) / b, so
``sigma`` is the oracle's std at the optimum. ``gaussian``/``student_t`` add noise of std sigma to
the exact gradient (``batch_size = 0``) or to the minibatch gradient (label noise label_noise).
"""

from __future__ import annotations

import numpy as np

from .backend import host_rng

from .base import Problem
from .data import label_variance, noise_var_at_opt, regression_batch_grad
from .hessians import factored_truth
from .linalg import op_norm, power_law, random_orthonormal
from .noise import noise_params
from .params import Param
from .registry import register


@register("power_law_lsq")
class PowerLawLSQ(Problem):
    """Matrix least squares, covariance eigenvalues j^-alpha, target coefficients j^-beta."""

    PARAMS = {
        "m": Param(32, int, per_run=False, low=1, doc="rows of X (outputs)"),
        "n": Param(64, int, per_run=False, low=1, doc="columns of X (input dimension)"),
        "alpha": Param(1.0, float, low=0.0, doc="covariance exponent: lambda_j = j^-alpha"),
        "beta": Param(1.0, float, low=0.0, doc="target exponent: coefficients decay as j^-beta"),
        "batch_size": Param(0, int, low=0, doc="minibatch size of the oracle; 0 = exact (population) gradient"),
        "label_noise": Param(0.0, float, low=0.0, doc="teacher's label noise: E||eps||^2 = label_noise^2"),
        "rotate": Param(False, bool, per_run=False, doc="random orthonormal eigenbasis instead of the identity"),
        "log_modes": Param(
            0,
            int,
            per_run=False,
            low=0,
            doc="log the error of this many eigen-directions (log-spaced j) as mode_err_<j> curves",
        ),
        **noise_params(minibatch=True),
    }

    EXAMPLES = (
        dict(m=3, n=5, alpha=1.5, beta=0.5, log_modes=3),
        dict(m=4, n=4, rotate=True, noise="minibatch", batch_size=3, sigma=0.3, label_noise=0.2),
        dict(m=1, n=3, noise="gaussian", sigma=0.2),
        dict(m=2, n=3, noise="student_t", sigma=0.4, df=4, batch_size=2, label_noise=0.1),
    )

    def __init__(self, runs, seed, backend, **params):
        super().__init__(runs, seed, backend, **params)
        B, m, n = self.runs, self.params["m"], self.params["n"]
        self.m, self.n, self.rotate = m, n, self.params["rotate"]
        self.layer_shapes = ((m, n),)
        self.eigs = self.finite("alpha", power_law(n, self.p("alpha")))  # (B, n) host float64: j^-alpha
        coef = power_law(n, self.p("beta"))[:, None, :]  # j^-beta
        g = np.empty((B, m, n))
        q = np.empty((B, n, n)) if self.rotate else None
        for s in np.unique(self.seeds):  # instances depend only on the seed; draw each once
            rng = host_rng(s, self.instance_key)
            gs = rng.standard_normal((m, n))
            idx = self.seeds == s
            g[idx] = gs
            if self.rotate:
                q[idx] = random_orthonormal(rng, n)
        c = g * coef
        c /= np.linalg.norm(c, axis=(1, 2), keepdims=True)
        self.coef_host = self.finite("beta", c)
        xstar = c if q is None else c @ q.transpose(0, 2, 1)
        self.xstar_host, self.q_host = xstar, q
        bk = backend
        self.xstar = bk.asarray(xstar)
        self.q = None if q is None else bk.asarray(q)
        self.qt = None if q is None else bk.asarray(np.ascontiguousarray(q.transpose(0, 2, 1)))
        self.lam = bk.asarray(self.eigs[:, None, :])  # (B, 1, n)
        self.sqrt_lam = bk.asarray(np.sqrt(self.eigs)[:, None, :])
        self.batch = self.p("batch_size", np.int64)
        self.bmax = int(self.batch.max())
        self.setup_noise(self.batch)
        self.trace = self.eigs.sum(axis=1)
        self.label_var = label_variance(self.noise_kind, self.p("label_noise"), self.p("sigma"), self.batch, self.trace)
        self.fstar = 0.5 * self.label_var
        self.batched = self.bmax > 0
        if self.batched:
            w = (np.arange(self.bmax)[None, :] < self.batch[:, None]) / np.maximum(self.batch, 1)[:, None]
            self.row_w = bk.asarray(w[:, :, None])  # (B, bmax, 1): 1/b on the run's first b rows
            self.any_exact = bool(np.any(self.batch == 0))  # host flag: no device read per step
            self.exact_rows = bk.asarray((self.batch == 0)[:, None, None], dtype=bk.xp.bool)
            self.noise_scale = bk.asarray((np.sqrt(self.label_var) / np.sqrt(m))[:, None, None])

    # --- geometry helpers ---------------------------------------------------------------------
    def _to_eig(self, d):
        """Coordinates of D in the eigenbasis (D Q)."""
        return d if self.q is None else self.xp.matmul(d, self.q)

    def _from_eig(self, e):
        return e if self.q is None else self.xp.matmul(e, self.qt)

    # --- the contract -------------------------------------------------------------------------
    def gap(self, params):
        de = self._to_eig(params[0] - self.xstar)
        return 0.5 * (de * de * self.lam).sum(axis=(1, 2))

    def loss(self, params):
        return self.gap(params) + self.backend.asarray(self.fstar)

    def grad(self, params):
        return (self._from_eig(self._to_eig(params[0] - self.xstar) * self.lam),)

    def sample_batch(self, rng):
        # z then e, both always drawn, each run's from streams of its own batch size: a run's
        # draws do not depend on its neighbours' parameters (before, all drew bmax rows, so a
        # run's minibatches changed with the largest batch size in its job or lane)
        return {"z": rng.normal_ragged(self.batch, (self.n,)), "e": rng.normal_ragged(self.batch, (self.m,))}

    def batch_grad(self, params, xi):
        xp = self.xp
        x = xi["z"] * self.sqrt_lam  # (B, b, n) samples in the eigenbasis
        if self.q is not None:
            x = xp.matmul(x, self.qt)
        g = regression_batch_grad(xp, x, params[0] - self.xstar, xi["e"] * self.noise_scale, self.row_w)
        if self.any_exact:
            g = xp.where(self.exact_rows, self.grad(params)[0], g)
        return (g,)

    def optimum(self):
        return (self.xstar,), self.backend.asarray(self.fstar)

    def constants(self):
        B, m = self.runs, self.m
        out = factored_truth(
            np.broadcast_to(self.eigs[:, None, :], (B, m, self.n)), kron=(np.ones((B, m)), self.eigs, 0.0)
        )
        out["f_star"] = self.fstar.copy()
        out["dist0_fro"] = np.linalg.norm(self.xstar_host, axis=(1, 2))
        out["dist0_op"] = op_norm(self.xstar_host)
        out["noise_var_opt"] = noise_var_at_opt(
            self.label_var, self.p("sigma"), self.noise_kind, self.batch, self.trace
        )
        return out

    def extra_metrics(self, params):
        """mode_err_<j> = ||(X - X*) q_j||^2, the squared error along the j-th eigenvector of Sigma
        (lambda_j = j^-alpha), for ``log_modes`` log-spaced j in 1..n: the per-mode curves on which
        Phases of Muon (arXiv 2605.09552) states its square-root preconditioning claim."""
        k = self.params["log_modes"]
        if k == 0:
            return {}
        de = self._to_eig(params[0] - self.xstar)
        per_mode = (de * de).sum(axis=1)  # (B, n)
        modes = np.unique(np.round(np.geomspace(1, self.n, min(k, self.n))).astype(int))
        return {f"mode_err_{j}": per_mode[:, j - 1] for j in modes}

    def spectra(self):
        """cov: the eigenvalues lambda_j of Sigma; target: the target's energy per eigendirection,
        sum_i C_ij^2 (C = X* Q)."""
        return {"cov": self.eigs.copy(), "target": (self.coef_host**2).sum(axis=1)}

    @classmethod
    def run_bytes(cls, params, itemsize):
        m, n, b = params.get("m", 32), params.get("n", 64), max(params.get("batch_size", 0), 1)
        rot = n * n * 2 if params.get("rotate") else 0
        return itemsize * (14 * m * n + rot + 3 * b * (m + n) + 32 * b * (m + n))
