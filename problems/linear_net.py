"""A two-layer linear network, nonconvex with known structure, for rate experiments with a
parameter tuple of two layers X = (W1, W2) (the layer-wise setting of Gluon and the
Muon-MVR rate theorems, seeds 000/003 in PAPERS.md):

    y = M* x + eps,  x ~ N(0, S), S = diag(lambda), lambda_j = j^-alpha (j = 1..n),
    f(W1, W2) = 1/2 E||W2 W1 x - y||^2 = 1/2 tr(D S D^T) + s^2 / 2,     D = W2 W1 - M*,
    grad_W1 f = W2^T D S,    grad_W2 f = D S W1^T,
    W1: (h, n) ("hidden" x inputs), W2: (m, h).

The teacher M* = U diag(t) V^T (Haar U, V; t_k = k^-beta over ``teacher_rank`` values, scaled to
||M*||_F = 1). The minimum over products of rank <= h is Eckart-Young's in the S-weighted norm:
with M* S^(1/2) = U' diag(s) V'^T, P* = U'_h diag(s_h) V'_h^T S^(-1/2) and

    f* = 1/2 sum_{k > h} s_k^2 + s^2 / 2      (0 excess when h >= teacher_rank: realizable).

``optimum()`` returns the balanced minimizer W2* = U'_h diag(s_h)^(1/2),
W1* = diag(s_h)^(1/2) V'_h^T S^(-1/2) (minimizers are not isolated: (W2 G, G^-1 W1) for invertible
G, so ``dist_fro`` is to this representative; ``prod_dist_fro`` = ||W2 W1 - P*||_F is invariant
and logged as an extra metric). Init: W1, W2 Gaussian, scaled by ``init_scale`` / sqrt(fan-in),
drawn per instance on the host.

Ground truth at the balanced optimum (the function is not globally smooth, not PL: the origin is a
saddle): L = lambda_max of the Hessian there (Lanczos on exact Hessian-vector products),
hessian_rank (dense eigendecomposition for small sizes; r (m + n - r) with r = rank(P*) in the
realizable case otherwise), eff_rank = tr / L (the trace is exact: m ||W1 S^(1/2)||_F^2 +
||W2||_F^2 tr S), mu = 0, L_* not defined for a tuple of layers (NaN).

Oracle: as in :mod:`problems.power_law_lsq` (``minibatch`` with label noise raised so that the
label part of the oracle's variance at the optimum is sigma^2; ``gaussian``/``student_t``
additive over both layers with total E||zeta||^2 = sigma^2).
"""

from __future__ import annotations

import numpy as np

from .base import Problem
from .data import label_variance, noise_var_at_opt, regression_batch_grad
from .linalg import op_norm, power_law, random_orthonormal
from .noise import noise_params
from .params import Param, ParamError
from .registry import register

C_U, C_V, C_W1, C_W2 = 1, 2, 3, 4
DENSE_HESSIAN_MAX = 1200  # parameter count up to which the Hessian at X* is formed densely


def hvp(xp, w1, w2, d, s, v1, v2):
    """Hessian-vector product of f at (W1, W2) along (V1, V2), with D = W2 W1 - M* and S the
    covariance broadcast as a row (…, 1, n): d(grad_W1) = V2^T D S + W2^T dD S,
    d(grad_W2) = dD S W1^T + D S V1^T, dD = V2 W1 + W2 V1."""
    dd = xp.matmul(v2, w1) + xp.matmul(w2, v1)
    ds, dds = d * s, dd * s
    return xp.matmul(v2.swapaxes(-1, -2), ds) + xp.matmul(w2.swapaxes(-1, -2), dds), xp.matmul(
        dds, w1.swapaxes(-1, -2)
    ) + xp.matmul(ds, v1.swapaxes(-1, -2))


@register("linear_net")
class LinearNet(Problem):
    """Two-layer linear network W2 W1 x (nonconvex), power-law inputs, low-rank teacher."""

    PARAMS = {
        "m": Param(16, int, per_run=False, low=1, doc="output dimension (rows of W2)"),
        "n": Param(16, int, per_run=False, low=1, doc="input dimension (columns of W1)"),
        "hidden": Param(16, int, per_run=False, low=1, doc="hidden width h: W1 is (h, n), W2 is (m, h)"),
        "alpha": Param(1.0, float, low=0.0, doc="input covariance exponent: lambda_j = j^-alpha"),
        "beta": Param(1.0, float, low=0.0, doc="teacher singular values k^-beta"),
        "teacher_rank": Param(0, int, low=0, doc="rank of M*; 0 = min(m, n)"),
        "init_scale": Param(0.5, float, low=0.0, low_open=True, doc="init: entries N(0, init_scale^2 / fan_in)"),
        "batch_size": Param(
            0, int, per_run=False, low=0, doc="samples per oracle call; 0 = exact (population) gradient"
        ),
        "label_noise": Param(0.0, float, low=0.0, doc="teacher's label noise: E||eps||^2 = label_noise^2"),
        **noise_params(minibatch=True),
    }

    EXAMPLES = (
        dict(m=3, n=4, hidden=2, teacher_rank=2),
        dict(m=4, n=3, hidden=1, noise="minibatch", batch_size=3, sigma=0.4),
        dict(m=2, n=2, hidden=3, noise="student_t", sigma=0.2, label_noise=0.1),
        dict(m=3, n=2, hidden=2, noise="gaussian", sigma=0.3, batch_size=2),
    )

    def __init__(self, runs, seed, backend, **params):
        super().__init__(runs, seed, backend, **params)
        B, m, n, h = self.runs, self.params["m"], self.params["n"], self.params["hidden"]
        self.m, self.n, self.h = m, n, h
        self.layer_shapes = ((h, n), (m, h))
        p = min(m, n)
        r = self.p("teacher_rank", np.int64)
        if np.any(r > p):
            raise ParamError(f"teacher_rank: got {int(r.max())}; allowed: an integer <= min(m, n) = {p} (0 = full)")
        r = np.where(r == 0, p, r)
        self.lam = self.finite("alpha", power_law(n, self.p("alpha")))  # (B, n)
        t = power_law(p, self.p("beta"), count=r)
        t = self.finite("beta", t / np.linalg.norm(t, axis=1, keepdims=True))
        mstar = np.empty((B, m, n))
        w1, w2 = np.empty((B, h, n)), np.empty((B, m, h))
        scale = self.p("init_scale")
        for s, _, idx in self.groups():
            u = random_orthonormal(self.host_rng(s, C_U), m, p)
            v = random_orthonormal(self.host_rng(s, C_V), n, p)
            mstar[idx] = (u[None] * t[idx][:, None, :]) @ v.T[None]
            w1[idx] = self.host_rng(s, C_W1).standard_normal((h, n)) / np.sqrt(n)
            w2[idx] = self.host_rng(s, C_W2).standard_normal((m, h)) / np.sqrt(h)
        self.mstar_host = mstar
        self.x0_host = (w1 * scale[:, None, None], w2 * scale[:, None, None])
        # Eckart-Young in the S-weighted norm
        sq = np.sqrt(self.lam)
        uu, sv, vt = np.linalg.svd(mstar * sq[:, None, :], full_matrices=False)
        k = min(h, p)
        self.excess = 0.5 * (sv[:, k:] ** 2).sum(axis=1)
        w2s = np.zeros((B, m, h))
        w1s = np.zeros((B, h, n))
        w2s[:, :, :k] = uu[:, :, :k] * np.sqrt(sv[:, None, :k])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # checked just below
            w1s[:, :k, :] = np.sqrt(sv[:, :k, None]) * vt[:, :k, :] / sq[:, None, :]
        # W1* carries S^(-1/2): a steep input spectrum can overflow the dtype
        self.xstar_host = (self.finite("alpha", w1s), self.finite("beta", w2s))
        self.pstar_host = w2s @ w1s
        self.realizable = r <= h
        self.rank_pstar = np.minimum(r, h)
        bk = backend
        self.mstar = bk.asarray(mstar)
        self.pstar = bk.asarray(self.pstar_host)
        self.s_row = bk.asarray(self.lam[:, None, :])  # (B, 1, n)
        self.xstar = tuple(bk.asarray(x) for x in self.xstar_host)
        self.batch = int(self.params["batch_size"])
        self.setup_noise(np.full(B, self.batch))
        self.batched = self.batch > 0
        self.trace_s = self.lam.sum(axis=1)
        self.per_sample = self._label_trace(w1s, w2s)
        self.label_var = label_variance(
            self.noise_kind, self.p("label_noise"), self.p("sigma"), self.batch, self.per_sample
        )
        self.fstar = self.excess + 0.5 * self.label_var
        if self.batched:
            self.sqrt_s = bk.asarray(sq[:, None, :])
            self.row_w = bk.asarray(np.full((B, self.batch, 1), 1.0 / self.batch))
            self.label_std = bk.asarray((np.sqrt(self.label_var) / np.sqrt(m))[:, None, None])

    # --- exact second moments of the minibatch oracle at a point (host) ------------------------------
    def _label_trace(self, w1, w2):
        """E||one-sample gradient||^2 per unit label variance: E||eps x^T W1^T||^2 +
        E||W2^T eps x^T||^2 = tr(W1 S W1^T) + ||W2||_F^2 tr(S) / m."""
        return (w1 * w1 * self.lam[:, None, :]).sum(axis=(1, 2)) + (w2 * w2).sum(axis=(1, 2)) * self.trace_s / self.m

    def _model_var(self, w1, w2, d):
        """Per-sample variance of the noiseless-label gradient at (W1, W2), exact for Gaussian x
        (Isserlis: E[x^T A x x^T C x] = tr(A S) tr(C S) + 2 tr(A S C S) for symmetric A, C)."""
        s = self.lam
        S = s[:, None, :]

        def quartic(a, c):  # E[x^T a x x^T c x] with diagonal S
            return np.einsum("bii,bi->b", a, s) * np.einsum("bii,bi->b", c, s) + 2 * np.einsum(
                "bij,bj,bji,bi->b", a, s, c, s
            )

        dtd = d.transpose(0, 2, 1) @ d
        g_mean = d * S  # E[(D x) x^T] = D S
        v2 = quartic(dtd, w1.transpose(0, 2, 1) @ w1) - ((g_mean @ w1.transpose(0, 2, 1)) ** 2).sum(axis=(1, 2))
        wd = d.transpose(0, 2, 1) @ w2 @ w2.transpose(0, 2, 1) @ d
        v1 = quartic(wd, np.broadcast_to(np.eye(self.n), wd.shape)) - ((w2.transpose(0, 2, 1) @ g_mean) ** 2).sum(
            axis=(1, 2)
        )
        return v1 + v2

    # --- the contract -------------------------------------------------------------------------
    def init(self, rng):
        return tuple(self.backend.asarray(x) for x in self.x0_host)

    def _resid(self, params):
        w1, w2 = params
        return self.xp.matmul(w2, w1) - self.mstar

    def loss(self, params):
        d = self._resid(params)
        return 0.5 * (d * d * self.s_row).sum(axis=(1, 2)) + self.backend.asarray(0.5 * self.label_var)

    def gap(self, params):
        return self.loss(params) - self.backend.asarray(self.fstar)

    def _chain(self, params, g):
        w1, w2 = params
        return (self.xp.matmul(w2.swapaxes(-1, -2), g), self.xp.matmul(g, w1.swapaxes(-1, -2)))

    def grad(self, params):
        return self._chain(params, self._resid(params) * self.s_row)

    def sample_batch(self, rng):
        return {"z": rng.normal((self.batch, self.n)), "e": rng.normal((self.batch, self.m))}

    def batch_grad(self, params, xi):
        x = xi["z"] * self.sqrt_s
        g = regression_batch_grad(self.xp, x, self._resid(params), xi["e"] * self.label_std, self.row_w)
        return self._chain(params, g)

    def extra_metrics(self, params):
        d = self.xp.matmul(params[1], params[0]) - self.pstar
        return {"prod_dist_fro": self.xp.sqrt((d * d).sum(axis=(1, 2)))}

    def optimum(self):
        return self.xstar, self.backend.asarray(self.fstar)

    # --- ground truth ---------------------------------------------------------------------------
    def hessian_host(self, b, point=None):
        """HVP function of run b at ``point`` (default X*) on flat float64 vectors (K, P)."""
        w1, w2 = (x[b] for x in (point or self.xstar_host))
        d = w2 @ w1 - self.mstar_host[b]
        s = self.lam[b][None, :]
        h, m, n = self.h, self.m, self.n

        def ap(v):
            v = np.atleast_2d(v)
            v1, v2 = v[:, : h * n].reshape(-1, h, n), v[:, h * n :].reshape(-1, m, h)
            a1, a2 = hvp(np, w1, w2, d, s, v1, v2)
            return np.concatenate([a1.reshape(len(v), -1), a2.reshape(len(v), -1)], axis=1)

        return ap

    def constants(self):
        if hasattr(self, "_constants"):
            return {k: v.copy() for k, v in self._constants.items()}
        B = self.runs
        P = self.h * (self.n + self.m)
        w1s, w2s = self.xstar_host
        L, rank = np.empty(B), np.empty(B)
        for s, _, idx in self.groups("alpha", "beta", "teacher_rank"):
            ap = self.hessian_host(idx[0])
            if P <= DENSE_HESSIAN_MAX:
                hm = ap(np.eye(P))
                e = np.linalg.eigvalsh(0.5 * (hm + hm.T))
                L[idx] = e.max()
                rank[idx] = (e > e.max() * P * 1e-12).sum()
            else:
                from scipy.sparse.linalg import LinearOperator, eigsh  # noqa: PLC0415 (construction-time only)

                op = LinearOperator((P, P), matvec=lambda v: ap(v)[0], dtype=np.float64)
                L[idx] = eigsh(op, k=1, which="LA", tol=1e-10, return_eigenvectors=False)[0]
                r = self.rank_pstar[idx]
                rank[idx] = np.where(self.realizable[idx], r * (self.m + self.n - r), np.nan)
        trace = (
            self.m * (w1s * w1s * self.lam[:, None, :]).sum(axis=(1, 2)) + (w2s * w2s).sum(axis=(1, 2)) * self.trace_s
        )
        w10, w20 = self.x0_host
        d0 = w20 @ w10 - self.mstar_host
        nan = np.full(B, np.nan)
        dstar = self.pstar_host - self.mstar_host
        out = {
            "L": L,
            "L_star": nan,
            "L_star_low": nan.copy(),
            "L_star_high": nan.copy(),
            "L_star_exact": np.zeros(B),
            "mu": np.zeros(B),
            "mu_sc": np.zeros(B),
            "hessian_rank": rank,
            "eff_rank": trace / L,
            "f_star": self.fstar.copy(),
            "gap0": 0.5 * (d0 * d0 * self.lam[:, None, :]).sum(axis=(1, 2)) - self.excess,
            "dist0_fro": np.sqrt(sum(((a - b) ** 2).sum(axis=(1, 2)) for a, b in zip(self.x0_host, self.xstar_host))),
            "dist0_op": np.maximum(op_norm(w10 - w1s), op_norm(w20 - w2s)),
            "prod_dist0_fro": np.linalg.norm(w20 @ w10 - self.pstar_host, axis=(1, 2)),
            "noise_var_opt": noise_var_at_opt(
                self.label_var,
                self.p("sigma"),
                self.noise_kind,
                np.full(B, self.batch),
                self.per_sample,
                self._model_var(w1s, w2s, dstar),
            ),
        }
        self._constants = out
        return {k: v.copy() for k, v in out.items()}

    @classmethod
    def run_bytes(cls, params, itemsize):
        m, n, h, b = (
            params.get("m", 16),
            params.get("n", 16),
            params.get("hidden", 16),
            max(params.get("batch_size", 0), 1),
        )
        return itemsize * (16 * h * (m + n) + 6 * m * n + 4 * b * (m + n))
