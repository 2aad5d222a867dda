"""Linear associative memory with softmax retrieval and power-law item frequencies (the setting of
"Muon in associative memory", arXiv 2602.05725; PAPERS.md, from a secondary summary).

N items with orthonormal keys k_i and values u_i (taken as the standard basis: GD and Muon are
both equivariant under orthogonal changes of the key and value bases, so any orthonormal
embedding gives the same trajectories up to that change). Item i is queried with frequency
p_i = i^-alpha / sum_k k^-alpha; retrieval is softmax over the values' scores u_j^T W k_i = W_ji:

    f(W) = sum_i p_i CE(W[:, i], i) = sum_i p_i (logsumexp_j W_ji - W_ii),
    grad f(W)[:, i] = p_i (softmax(W[:, i]) - e_i).

So GD moves column i (item i) at a speed proportional to its frequency p_i, while Muon's
orthogonalized step moves all columns alike. Without label noise f* = 0 is an infimum approached as ||W|| -> inf: no
minimizer exists, so ``optimum()`` returns a NaN X* and the distance metric is undefined (NaN).
``log_modes`` logs the retrieval error 1 - softmax(W[:, j])_j of log-spaced items j as
``mode_err_<j>`` (the analysis fits per-component rates against p_j ~ j^-alpha).
Label noise (``label_flip`` = e, the smallest noisy variant the lab needs for the paper's noisy case,
whose exact noise model could not be read): item i's stored answer is i with probability 1 - e and
a uniformly random item otherwise, so the target column is q_i = (1 - e) e_i + (e / N) 1 and

    f(W) = sum_i p_i CE(softmax(W[:, i]), q_i),   grad f(W)[:, i] = p_i (softmax(W[:, i]) - q_i),

with the exact (expected) gradient. For e > 0 the minimum is attained, at W*[:, i] = log q_i (up
to a constant per column), with f* = sum_i p_i H(q_i) (H the entropy); ``gap`` is f - f*.
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
        "label_flip": Param(
            0.0,
            float,
            low=0.0,
            high=0.999,
            doc="label noise: the stored answer is a uniformly random item with this probability",
        ),
        "log_modes": Param(
            0, int, per_run=False, low=0, doc="log the retrieval error of this many items (log-spaced) as mode_err_<j>"
        ),
        **noise_params(minibatch=False),
    }

    EXAMPLES = (
        dict(items=4, alpha=1.0),
        dict(items=6, alpha=0.5, noise="gaussian", sigma=0.3, log_modes=3),
        dict(items=3, alpha=2.0, noise="student_t", sigma=0.2),
        dict(items=5, alpha=1.0, label_flip=0.2),
    )

    def __init__(self, runs, seed, backend, **params):
        super().__init__(runs, seed, backend, **params)
        n = self.params["items"]
        self.n = n
        self.layer_shapes = ((n, n),)
        freq = power_law(n, self.p("alpha"))
        self.freq_host = self.finite("alpha", freq / freq.sum(axis=1, keepdims=True))  # (B, N)
        self.freq = backend.asarray(self.freq_host[:, None, :])  # column i scaled by p_i
        e = self.p("label_flip")[:, None, None]
        self.target_host = (1 - e) * np.eye(n) + e / n  # (B, N, N): column i is q_i
        self.target = backend.asarray(self.target_host)
        q = np.diagonal(self.target_host, axis1=1, axis2=2)  # (B, N): q_ii; off-diagonal e / N
        off = np.where(
            e[:, :, 0] > 0, -(n - 1) * (e[:, :, 0] / n) * np.log(np.where(e[:, :, 0] > 0, e[:, :, 0] / n, 1.0)), 0.0
        )
        entropy = -q * np.log(q) + off  # (B, N): H(q_i), the same for every item
        self.fstar_host = (entropy * self.freq_host).sum(axis=1)
        self.setup_noise()

    def _softmax_cols(self, w):
        xp = self.xp
        z = w - xp.max(w, axis=1, keepdims=True)
        e = xp.exp(z)
        return e / e.sum(axis=1, keepdims=True), z, e

    def loss(self, params):
        xp = self.xp
        w = params[0]
        _, z, e = self._softmax_cols(w)
        ce = xp.log(e.sum(axis=1)) - (self.target * z).sum(axis=1)  # (B, N) per item; sum_j q_ji = 1
        return (ce * self.freq[:, 0, :]).sum(axis=1)

    def gap(self, params):
        return self.loss(params) - self.backend.asarray(self.fstar_host)

    def grad(self, params):
        s, _, _ = self._softmax_cols(params[0])
        return ((s - self.target) * self.freq,)

    def extra_metrics(self, params):
        k = self.params["log_modes"]
        if k == 0:
            return {}
        s, _, _ = self._softmax_cols(params[0])
        err = 1 - self.xp.linalg.diagonal(s)  # (B, N)
        items = np.unique(np.round(np.geomspace(1, self.n, min(k, self.n))).astype(int))
        return {f"mode_err_{j}": err[:, j - 1] for j in items}

    def optimum(self):
        e = self.p("label_flip")[:, None, None]
        with np.errstate(divide="ignore"):
            w = np.where(e > 0, np.log(self.target_host), np.nan)  # log q_i per column; none without noise
        return (self.backend.asarray(w),), self.backend.asarray(self.fstar_host.copy())

    def constants(self):
        return {
            "L": self.freq_host[:, 0] / 2,
            "p_max": self.freq_host[:, 0],
            "p_min": self.freq_host[:, -1],
            "f_star": self.fstar_host.copy(),
            "label_flip": self.p("label_flip"),
            "noise_var_opt": self.p("sigma") ** 2,
        }

    def spectra(self):
        return {"freq": self.freq_host.copy()}

    @classmethod
    def run_bytes(cls, params, itemsize):
        n = params.get("items", 32)
        return itemsize * 20 * n * n
