"""Two-sided matrix least squares, the setting of the Phases-of-Muon group's experiments
(Paquette et al., "Phases of Muon", arXiv 2605.09552; PAPERS.md):

    y = x_out^T W* x_in + eps,   x_in ~ N(0, S_in), x_out ~ N(0, S_out) independent,
    S_in = Q_in diag(lambda_in) Q_in^T,  lambda_in_j = j^-alpha_in  (j = 1..n), likewise S_out (m),
    f(W) = 1/2 E (x_out^T W x_in - y)^2 = 1/2 tr(S_out D S_in D^T) + s^2 / 2,   D = W - W*,
    grad f(W) = S_out D S_in,   f* = s^2 / 2.

The Hessian is the Kronecker operator D -> S_out D S_in (:class:`problems.hessians.FactoredH` with
W = lambda_out lambda_in^T), so L = 1, L_* = sum_{k <= min(m, n)} lambda_out_k lambda_in_k and
mu = lambda_out_m lambda_in_n exactly. The teacher is W* = Q_out C Q_in^T with
C_ij = g_ij (i j)^-beta, g ~ N(0, 1), scaled to ||W*||_F = 1; Q_in, Q_out are the identity, or
Haar-random when ``rotate``.

Oracle: ``noise = minibatch`` averages r_k x_out,k x_in,k^T over ``batch_size`` samples, with
r_k = x_out,k^T D x_in,k - eps_k (computed in the eigenbases: the same draw can be evaluated at two
points). One sample's gradient at W* is -eps x_out x_in^T, of mean square s^2 tr(S_out) tr(S_in),
so s^2 = label_noise^2 + sigma^2 b / (tr S_out tr S_in) makes sigma the oracle's std at the
optimum (a noiseless teacher: sigma = label_noise = 0). ``gaussian``/``student_t`` add noise of
std sigma to the exact (``batch_size = 0``) or the minibatch gradient.
"""

from __future__ import annotations

import numpy as np

from .base import Problem
from .data import label_variance, noise_var_at_opt
from .hessians import FactoredH
from .linalg import op_norm, power_law, random_orthonormal
from .noise import noise_params
from .params import Param
from .registry import register

C_QIN, C_QOUT, C_TEACHER = 1, 2, 3


@register("two_sided_lsq")
class TwoSidedLSQ(Problem):
    """y = x_out^T W x_in: power-law input and output covariances, power-law teacher, minibatches."""

    PARAMS = {
        "m": Param(32, int, per_run=False, low=1, doc="rows of W = dimension of x_out (N_out)"),
        "n": Param(32, int, per_run=False, low=1, doc="columns of W = dimension of x_in (N_in)"),
        "alpha_in": Param(1.0, float, low=0.0, doc="input covariance exponent: lambda_in_j = j^-alpha_in"),
        "alpha_out": Param(1.0, float, low=0.0, doc="output covariance exponent: lambda_out_i = i^-alpha_out"),
        "beta": Param(0.0, float, low=0.0, doc="teacher exponent: C_ij ~ g_ij (i j)^-beta in the eigenbases"),
        "rotate": Param(False, bool, per_run=False, doc="Haar-random eigenbases instead of the identity"),
        "batch_size": Param(
            0, int, per_run=False, low=0, doc="samples per oracle call; 0 = exact (population) gradient"
        ),
        "label_noise": Param(0.0, float, low=0.0, doc="teacher's label noise std (0 = noiseless teacher)"),
        **noise_params(minibatch=True),
    }

    EXAMPLES = (
        dict(m=4, n=3, alpha_in=1.0, alpha_out=0.5, beta=0.5),
        dict(m=3, n=5, rotate=True, noise="minibatch", batch_size=4, sigma=0.5, label_noise=0.1),
        dict(m=1, n=4, noise="gaussian", sigma=0.3, batch_size=2, label_noise=0.2),
        dict(m=2, n=2, rotate=True, noise="student_t", sigma=0.3),
    )

    def __init__(self, runs, seed, backend, **params):
        super().__init__(runs, seed, backend, **params)
        B, m, n = self.runs, self.params["m"], self.params["n"]
        self.m, self.n, self.rotate = m, n, self.params["rotate"]
        self.layer_shapes = ((m, n),)
        self.lam_in = self.finite("alpha_in", power_law(n, self.p("alpha_in")))
        self.lam_out = self.finite("alpha_out", power_law(m, self.p("alpha_out")))
        beta = self.p("beta")
        decay = power_law(m, beta)[:, :, None] * power_law(n, beta)[:, None, :]  # (i j)^-beta
        g = np.empty((B, m, n))
        q_in = np.empty((B, n, n)) if self.rotate else None
        q_out = np.empty((B, m, m)) if self.rotate else None
        for s, _, idx in self.groups():
            g[idx] = self.host_rng(s, C_TEACHER).standard_normal((m, n))
            if self.rotate:
                q_in[idx] = random_orthonormal(self.host_rng(s, C_QIN), n)
                q_out[idx] = random_orthonormal(self.host_rng(s, C_QOUT), m)
        c = g * decay
        c /= np.linalg.norm(c, axis=(1, 2), keepdims=True)
        self.coef = self.finite("beta", c)
        self.wstar_host = c if not self.rotate else q_out @ c @ q_in.transpose(0, 2, 1)
        self.op = FactoredH(
            backend,
            self.lam_out[:, :, None] * self.lam_in[:, None, :],
            np.zeros(B),
            q_out,
            q_in,
            factors=(self.lam_out, self.lam_in),
        )
        self.wstar = backend.asarray(self.wstar_host)
        self.batch = int(self.params["batch_size"])
        self.setup_noise(np.full(B, self.batch))
        self.batched = self.batch > 0
        self.trace = self.lam_in.sum(axis=1) * self.lam_out.sum(axis=1)  # E||x_out||^2 E||x_in||^2
        self.label_var = label_variance(self.noise_kind, self.p("label_noise"), self.p("sigma"), self.batch, self.trace)
        self.fstar = 0.5 * self.label_var
        if self.batched:
            self.sqrt_in = backend.asarray(np.sqrt(self.lam_in)[:, None, :])  # (B, 1, n)
            self.sqrt_out = backend.asarray(np.sqrt(self.lam_out)[:, None, :])  # (B, 1, m)
            self.label_std = backend.asarray(np.sqrt(self.label_var)[:, None])  # (B, 1)

    # --- the contract -------------------------------------------------------------------------
    def grad(self, params):
        return (self.op.apply(params[0] - self.wstar),)

    def gap(self, params):
        e = params[0] - self.wstar
        return 0.5 * (e * self.op.apply(e)).sum(axis=(1, 2))

    def loss(self, params):
        return self.gap(params) + self.backend.asarray(self.fstar)

    def sample_batch(self, rng):
        return {
            "z_in": rng.normal((self.batch, self.n)),
            "z_out": rng.normal((self.batch, self.m)),
            "e": rng.normal((self.batch,)),
        }

    def batch_grad(self, params, xi):
        xp, op = self.xp, self.op
        x_in = xi["z_in"] * self.sqrt_in  # (B, b, n), coordinates in the eigenbasis Q_in
        x_out = xi["z_out"] * self.sqrt_out  # (B, b, m)
        d = params[0] - self.wstar
        if op.p is not None:
            d = xp.matmul(xp.matmul(op.pt, d), op.q)  # Q_out^T D Q_in
        r = (xp.matmul(x_out, d) * x_in).sum(axis=2) - xi["e"] * self.label_std  # (B, b)
        g = xp.matmul((x_out * (r / self.batch)[:, :, None]).swapaxes(-1, -2), x_in)
        if op.p is not None:
            g = xp.matmul(xp.matmul(op.p, g), op.qt)
        return (g,)

    def optimum(self):
        return (self.wstar,), self.backend.asarray(self.fstar)

    def constants(self):
        out = self.op.truth()
        out["f_star"] = self.fstar.copy()
        out["dist0_fro"] = np.linalg.norm(self.wstar_host, axis=(1, 2))
        out["dist0_op"] = op_norm(self.wstar_host)
        out["noise_var_opt"] = noise_var_at_opt(
            self.label_var, self.p("sigma"), self.noise_kind, np.full(self.runs, self.batch), self.trace
        )
        return out

    def spectra(self):
        """in/out: the covariance eigenvalues; target_in/target_out: the teacher's energy per
        input/output eigendirection (column/row sums of C^2)."""
        c2 = self.coef**2
        return {
            "in": self.lam_in.copy(),
            "out": self.lam_out.copy(),
            "target_in": c2.sum(axis=1),
            "target_out": c2.sum(axis=2),
        }

    @classmethod
    def run_bytes(cls, params, itemsize):
        m, n, b = params.get("m", 32), params.get("n", 32), max(params.get("batch_size", 0), 1)
        rot = 2 * (m * m + n * n) if params.get("rotate") else 0
        return itemsize * (16 * m * n + rot + 8 * b * (m + n + 1) + 2 * b * m)
