"""The oracle-noise layer shared by every problem: ``noise = none | gaussian | student_t |
minibatch``, ``sigma``, ``df``.

``sigma`` is the standard deviation of the stochastic gradient in Frobenius norm, whatever the
shape and the number of layers: E||g - grad f||_F^2 = sigma^2 (summed over all layers).

- ``gaussian``: g = grad f + zeta, zeta = sigma / sqrt(N) * z with z ~ N(0, I_N), N = sum_i m_i n_i.
- ``student_t``: the same with z_k = w_k sqrt((df - 2) / chi2_k), w_k ~ N(0, 1), chi2_k a
  chi-square with ``df`` degrees of freedom built as a sum of ``df`` squared standard normals
  (independent per entry), so each entry is Student-t(df) rescaled to unit variance
  (Var t_df = df / (df - 2)); df >= 3 keeps the variance finite.
- ``minibatch`` (problems with a data model only): the gradient of a minibatch of ``batch_size``
  fresh samples; the teacher's label noise is raised so that the oracle's variance at the
  optimum is sigma^2 (away from it the minibatch adds its own, point-dependent variance).

Additive noise composes with minibatches: on a data problem with ``batch_size >= 1``,
``gaussian``/``student_t`` add zeta to the minibatch gradient of the (noiseless, or
``label_noise``) teacher, so sigma^2 is again the variance at the optimum.

A draw xi holds the realized zeta, so evaluating the same xi at two points adds the same noise
to both gradients (what STORM/MVR-type methods need, Cutkosky & Orabona 2019; PAPERS.md).
"""

from __future__ import annotations

import numpy as np

from .params import Param, ParamError

NOISE_KINDS = ("none", "gaussian", "student_t", "minibatch")
ADDITIVE = ("gaussian", "student_t")


def noise_params(minibatch: bool = False) -> dict[str, Param]:
    """The noise parameters a problem declares (``minibatch`` only where it has a data model)."""
    kinds = NOISE_KINDS if minibatch else tuple(k for k in NOISE_KINDS if k != "minibatch")
    return {
        "noise": Param(
            "none",
            str,
            per_run=False,
            choices=kinds,
            doc="oracle noise: none (exact gradient), gaussian, student_t (additive), minibatch (data problems)",
        ),
        "sigma": Param(
            0.0,
            float,
            low=0.0,
            doc="std of the stochastic gradient in Frobenius norm, E||g - grad f||_F^2 = sigma^2 "
            "(at the optimum for minibatch noise)",
        ),
        "df": Param(
            5,
            int,
            per_run=False,
            low=3,
            doc="Student-t degrees of freedom (noise = 'student_t'); >= 3 for a finite variance",
        ),
    }


def check_noise_combination(kind: str, sigma: np.ndarray, batch_size: np.ndarray | None) -> None:
    """Errors (naming the parameter) for combinations that have no meaning."""
    if kind == "none" and np.any(sigma > 0):
        raise ParamError(
            f"sigma: got {float(sigma.max()):g} with noise = 'none' (the exact gradient); "
            "set noise = 'gaussian', 'student_t' or 'minibatch', or sigma = 0"
        )
    if batch_size is None:
        return
    if kind == "none" and np.any(batch_size > 0):
        raise ParamError(
            f"batch_size: got {int(batch_size.max())} with noise = 'none' (the exact gradient); "
            "use noise = 'minibatch' for minibatch gradients, or batch_size = 0"
        )
    if kind == "minibatch" and np.any(batch_size < 1):
        raise ParamError("batch_size: noise = 'minibatch' needs batch_size >= 1 in every run, got 0")


class AdditiveNoise:
    """Draws zeta for ``gaussian``/``student_t`` noise over the layers ``shapes``; per-run sigma."""

    def __init__(self, kind: str, sigma: np.ndarray, df: int, shapes, backend):
        self.kind, self.df, self.shapes, self.backend = kind, int(df), tuple(shapes), backend
        self.size = int(sum(m * n for m, n in self.shapes))
        self.active = kind in ADDITIVE and bool(np.any(sigma > 0))
        self.scale = backend.asarray((np.asarray(sigma, np.float64) / np.sqrt(self.size))[:, None])

    def sample(self, rng):
        """zeta as a tuple of layers (B, m_i, n_i), or None when there is no additive noise.

        One flat draw of shape (N,) per step, and (df, 1, N) for the chi-square: a 1-D and a 3-D
        key, so neither shares a RunRNG stream with a problem's 2-D data draws, whose row counts
        can vary per run (RunRNG.normal_ragged; the chi-square's (df, N) clashed with a data
        draw (r, n) where N = n and a neighbour's batch size r was df, which moved a run's noise
        with its neighbours' batch sizes). A 1-D data draw (two_sided_lsq's per-sample label
        noise) of length N shares the flat draw's stream: consecutive draws of one stream, still
        independent, and its length is one value per job."""
        if not self.active:
            return None
        xp = self.backend.xp
        z = rng.normal((self.size,))
        if self.kind == "student_t":
            w = rng.normal((self.df, 1, self.size))
            chi2 = (w * w).sum(axis=(1, 2))
            z = z * xp.sqrt((self.df - 2) / chi2)
        z = z * self.scale
        out, off = [], 0
        for m, n in self.shapes:
            out.append(z[:, off : off + m * n].reshape(z.shape[0], m, n))
            off += m * n
        return tuple(out)
