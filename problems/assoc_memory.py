"""Linear associative memory with softmax retrieval and power-law item frequencies (the setting of
"Muon in associative memory", arXiv 2602.05725; PAPERS.md, from a secondary summary).

N items with orthonormal keys k_i and values u_i (taken as the standard basis: GD and Muon are
both equivariant under orthogonal changes of the key and value bases, so any orthonormal
embedding gives the same trajectories up to that change). Item i is queried with frequency
p_i = i^-alpha / sum_k k^-alpha; retrieval is softmax over the values' scores u_j^T W k_i = W_ji:

    f(W) = sum_i p_i CE(W[:, i], i) = sum_i p_i (logsumexp_j W_ji - W_ii),
    grad f(W)[:, i] = p_i (softmax(W[:, i]) - e_i).

So GD moves column i (item i) at a speed proportional to its frequency p_i, while Muon's
orthogonalized step moves all columns alike. f* = 0 is an infimum approached as ||W|| -> inf: no
minimizer exists, so ``optimum()`` returns a NaN X* and the distance metric is undefined (NaN).
``log_modes`` logs the retrieval error 1 - softmax(W[:, j])_j of log-spaced items j as
``mode_err_<j>`` (the analysis fits per-component rates against p_j ~ j^-alpha).
Hessian bound: the softmax-CE Hessian of one column is diag(s) - s s^T with eigenvalues <= 1/2,
so f is L-smooth in Frobenius norm with L <= p_1 / 2 (reported as ``L``, an upper bound).
"""

from __future__ import annotations

import numpy as np

from .base import Problem
from .linalg import power_law
from .noise import noise_params
from .params import Param
from .registry import register


@register("assoc_memory")
class AssocMemory(Problem):
    """Linear associative memory, softmax retrieval, item frequencies ~ i^-alpha."""

    PARAMS = {
        "items": Param(32, int, per_run=False, low=2, doc="number of stored items N (W is N x N)"),
        "alpha": Param(1.0, float, low=0.0, doc="frequency exponent: p_i ~ i^-alpha"),
        "log_modes": Param(
            0, int, per_run=False, low=0, doc="log the retrieval error of this many items (log-spaced) as mode_err_<j>"
        ),
        **noise_params(minibatch=False),
    }

    EXAMPLES = (
        dict(items=4, alpha=1.0),
        dict(items=6, alpha=0.5, noise="gaussian", sigma=0.3, log_modes=3),
        dict(items=3, alpha=2.0, noise="student_t", sigma=0.2),
    )

    def __init__(self, runs, seed, backend, **params):
        super().__init__(runs, seed, backend, **params)
        n = self.params["items"]
        self.n = n
        self.layer_shapes = ((n, n),)
        freq = power_law(n, self.p("alpha"))
        self.freq_host = self.finite("alpha", freq / freq.sum(axis=1, keepdims=True))  # (B, N)
        self.freq = backend.asarray(self.freq_host[:, None, :])  # column i scaled by p_i
        self.eye = backend.asarray(np.eye(n))
        self.setup_noise()

    def _softmax_cols(self, w):
        xp = self.xp
        z = w - w.max(axis=1, keepdims=True)
        e = xp.exp(z)
        return e / e.sum(axis=1, keepdims=True), z, e

    def loss(self, params):
        xp = self.xp
        w = params[0]
        _, z, e = self._softmax_cols(w)
        lse_minus_diag = xp.log(e.sum(axis=1)) - xp.diagonal(z, axis1=1, axis2=2)  # (B, N) per item
        return (lse_minus_diag * self.freq[:, 0, :]).sum(axis=1)

    gap = loss  # f* = 0 (an infimum)

    def grad(self, params):
        s, _, _ = self._softmax_cols(params[0])
        return ((s - self.eye) * self.freq,)

    def extra_metrics(self, params):
        k = self.params["log_modes"]
        if k == 0:
            return {}
        s, _, _ = self._softmax_cols(params[0])
        err = 1 - self.xp.diagonal(s, axis1=1, axis2=2)  # (B, N)
        items = np.unique(np.round(np.geomspace(1, self.n, min(k, self.n))).astype(int))
        return {f"mode_err_{j}": err[:, j - 1] for j in items}

    def optimum(self):
        nan = self.xp.full((self.runs, self.n, self.n), np.nan, dtype=self.dtype)
        return (nan,), self.backend.asarray(np.zeros(self.runs))

    def constants(self):
        return {
            "L": self.freq_host[:, 0] / 2,
            "p_max": self.freq_host[:, 0],
            "p_min": self.freq_host[:, -1],
            "f_star": np.zeros(self.runs),
            "noise_var_opt": self.p("sigma") ** 2,
        }

    def spectra(self):
        return {"freq": self.freq_host.copy()}

    @classmethod
    def run_bytes(cls, params, itemsize):
        n = params.get("items", 32)
        return itemsize * 20 * n * n
