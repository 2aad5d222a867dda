"""Dion: a low-rank orthonormal update by warm-started power iteration with error feedback
(Ahn, Xu, Abreu & Langford, arXiv 2504.05295; docs/optimizers.md, "Dion")."""

from __future__ import annotations

import math
import zlib


from problems.backend import array_module, batched_linalg, device_of, dtype_name, host_rng
from problems.params import Param

from ..registry import register
from . import base

_Q0_KEY = zlib.crc32(b"dion")  # the fixed stream of the initial right factor


def rank(rank_fraction: float, m: int, n: int) -> int:
    """r = ceil(rank_fraction min(m, n)), at least 1."""
    return max(1, min(min(m, n), math.ceil(rank_fraction * min(m, n) - 1e-9)))


def _unit_columns(r, q_prev):
    """(columns of R scaled to unit norm, zero where a column is numerically zero: norm at most
    max(m, n) eps(dtype) times the largest column norm, as the svd kernel drops null directions;
    the warm start for the next power iteration: those columns, or the previous ones where R's
    column is zero). Without the cut, the rounding-level column that QR adds for a rank-deficient
    B would be blown up to a unit direction that B does not contain."""
    xp = array_module(r)
    nrm = base.fro(r, axis=-2)
    keep = nrm > max(r.shape[-2:]) * xp.finfo(r.dtype).eps * xp.max(nrm, axis=-1, keepdims=True)
    q = xp.where(keep, r / xp.where(keep, nrm, 1), 0)
    return q, xp.where(keep, q, q_prev)


def power_iteration(b, q, iters: int):
    """``iters`` steps of PowerIter1 on B (B, m, n) from the right factor Q (B, n, r):
    P = QR(B Q) (orthonormal columns), R = B^T P, Q = R with unit columns. Returns (P, R, the
    unit-column R of the last step, the warm start for the next call). On the max-abs-scaled B,
    so a tiny or huge B neither underflows nor overflows; R is returned at B's scale."""
    xp = array_module(b)
    amax = xp.max(xp.abs(b), axis=(-2, -1), keepdims=True)
    s = xp.where(amax > 0, amax, 1)
    bn = b / s
    for _ in range(iters):
        p = batched_linalg(xp.linalg.qr, xp.matmul(bn, q))[0]
        r = xp.matmul(bn.swapaxes(-1, -2), p)
        q_unit, q = _unit_columns(r, q)
    return p, s * r, q_unit, q


@register("dion")
class Dion:
    """Dion (arXiv 2504.05295, Algorithm 1, the centralized form; read through the authors'
    reference code microsoft/dion dion/dion_simple.py @6e2c58d, since the paper's html was not in
    the search corpus): with the momentum / error buffer M (zero at the start) and the right
    factor Q (n x r), per layer,
    B = M + G;  P = QR(B Q), R = B^T P  (one warm-started power iteration);
    M <- B - (1 - beta) P R^T  (error feedback: what the rank-r step left out stays in M);
    Q <- R with unit columns;  X <- (1 - lr wd) X - lr s(m, n) P Q^T, s = sqrt(m / n) ("fan").
    beta is the paper's mu; r = ceil(rank_fraction min(m, n)) (structural). ``power_iters`` > 1
    repeats the power iteration (orthogonal iteration on B B^T; 1 is the paper).

    Our choices: Q_0 is one Gaussian n x r draw from a fixed stream, the same for every run (the
    authors draw it at random); instead of the authors' absolute eps in the column normalization,
    a column of R below max(m, n) eps(dtype) times the largest is zero in the step (so a
    rank-deficient B gives no direction outside its range, as orth = svd) and keeps its previous
    Q column as the next warm start (the authors' eps would make it zero for good).

    Not refused: rank_fraction = 1. At full rank P R^T = B, so M = beta B (heavy-ball momentum
    B_t = beta B_{t-1} + G_t), but one power iteration gives P D^-1 P^T B (D the column norms of
    R), not the polar factor of B; only with converged iterations (power_iters large) is Dion
    ``muon`` with momentum = "sum", nesterov = false, orth = svd, scale = "fan" (tested both
    ways), so no setting of Dion's own is exactly another method."""

    FAMILY = "spectral"
    ORACLE_CALLS = 1
    PAPERS = ("2504.05295",)
    TEST_HPARAMS = {"lr": 0.03, "beta": 0.9, "rank_fraction": 0.5, "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = base.with_schedule(
        {
            "lr": base.lr(1e-2),
            "beta": base.beta(0.95, "mu: the share of the rank-r part kept in the buffer M"),
            "rank_fraction": Param(
                1.0,
                float,
                per_run=False,
                low=0.0,
                low_open=True,
                high=1.0,
                doc="r = ceil(rank_fraction min(m, n))",
            ),
            "power_iters": Param(1, int, per_run=False, low=1, doc="power iterations per step (1 = the paper)"),
            "scale": base.scale("fan"),
            "weight_decay": base.WEIGHT_DECAY,
        }
    )

    @staticmethod
    def init(params, hp, xp):
        qs = []
        for x in params:
            B, m, n = x.shape
            r = rank(hp["rank_fraction"], m, n)
            q0 = host_rng(_Q0_KEY, n, r).standard_normal((n, r)).astype(dtype_name(x.dtype))
            qs.append(xp.repeat(xp.asarray(q0, device=device_of(x))[None], B, axis=0))
        return {"m": tuple(xp.zeros_like(x) for x in params), "q": tuple(qs)}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        lr, mu, sfn = hp["lr"], hp["beta"], base.SCALES[hp["scale"]]
        xp = oracle.xp
        new, ms, qs = [], [], []
        for x, g, m_prev, q_prev in zip(params, grads, state["m"], state["q"]):
            b = m_prev + g
            p, r, q_unit, q = power_iteration(b, q_prev, hp["power_iters"])
            ms.append(b - (1 - mu) * xp.matmul(p, r.swapaxes(-1, -2)))
            qs.append(q)
            step = (lr * sfn(*x.shape[-2:])) * xp.matmul(p, q_unit.swapaxes(-1, -2))
            new.append(base.decay(x, lr, hp["weight_decay"]) - step)
        return tuple(new), {"m": tuple(ms), "q": tuple(qs)}
