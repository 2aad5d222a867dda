"""Muon with an Adam-style second moment of the orthogonalized update: NorMuon (per neuron, i.e.
per row) and AdaMuon (per entry). Both: M = EMA(G) (optionally Nesterov), O = orth(U), a second
moment V of O, O^ = O / (sqrt(V) + eps), and the step rescaled to a fixed Frobenius norm,
X <- (1 - lr wd) X - lr s(m, n) (T / ||O^||_F) O^.

T, the norm the normalized update is rescaled to (``norm_to``): "polar" = sqrt(min(m, n)), the
Frobenius norm of an exact full-rank polar factor, so that with ``scale = "rms"`` the step is
lr 0.2 sqrt(m n) O^ / ||O^||_F (RMS 0.2 lr: the papers' "match Adam's RMS" rule); "orth" = ||O||_F,
the norm of the orthogonalized update before the normalization (the NorMuon authors' code, which
then applies Muon's sqrt(max(1, m/n))).

Sources (docs/optimizers.md, "NorMuon and AdaMuon", says what was read of each):
NorMuon, Li, Liu, Liang, Chen, Zhao, arXiv 2510.05491 (v1); AdaMuon, Si, Zhang, Shen,
arXiv 2507.11005 (v3 abstract; v1 for the released code).
"""

from __future__ import annotations

import math

from ..orth import orthogonalize
from ..registry import register
from . import base
from .muon import _common

NORM_TO = ("polar", "orth")


def _norm_to(default: str) -> base.Param:
    return base.Param(
        default,
        str,
        per_run=False,
        choices=NORM_TO,
        doc="Frobenius norm the normalized update is rescaled to: polar sqrt(min(m, n)), orth ||orth(U)||_F",
    )


def _eps(default: float) -> base.Param:
    return base.Param(default, float, low=0.0, low_open=True, doc="added to sqrt(V)")


def _orth(u, hp):
    return orthogonalize(u, hp["orth"], hp["ns_steps"], hp["orth_precision"])


def normalized_step(params, o, o_hat, hp, norm_to: str = "polar"):
    """X <- (1 - lr wd) X - lr s(m, n) (T / ||O^||_F) O^ per layer, T per ``norm_to`` (polar:
    sqrt(min(m, n)); orth: ||O||_F); a zero O^ gives a zero step."""
    sfn, lr = base.SCALES[hp["scale"]], hp["lr"]
    out = []
    for x, oi, hi in zip(params, o, o_hat):
        m, n = x.shape[-2:]
        target = math.sqrt(min(m, n)) if norm_to == "polar" else base.fro(oi)
        step = (lr * sfn(m, n)) * base.safe_div(target * hi, base.fro(hi))
        out.append(base.decay(x, lr, hp["weight_decay"]) - step)
    return tuple(out)


@register("normuon")
class NorMuon:
    """NorMuon (Li et al., arXiv 2510.05491 v1, Algorithm 1 as rendered by a documentation page;
    checked against the authors' code, zichongli5/NorMuon normuon.py @e5aaaf4):
    M = beta M + (1 - beta) G; U = M (Nesterov: (1 - beta) G + beta M); O = orth(U);
    v = beta2 v + (1 - beta2) mean_j O_ij^2 (one entry per row i: per neuron, X = (out, in));
    O^ = O / (sqrt(v) + eps) row-wise; X <- (1 - lr wd) X - lr s(m, n) (T / ||O^||_F) O^.

    Paper box: T = sqrt(min(m, n)) with s = 0.2 sqrt(max(m, n)), i.e. the step 0.2 lr sqrt(m n)
    O^ / ||O^||_F (``norm_to = "polar"``, ``scale = "rms"``: the defaults). The authors' code
    instead restores ||O^||_F to ||O||_F and applies sqrt(max(1, m/n)) (``norm_to = "orth"``,
    ``scale = "original"``) and uses Nesterov by default; the box uses U = M. No bias correction
    (the rescale cancels it). With orth = svd and m <= n (full row rank) every row of O has unit
    norm, v is the same for every row and NorMuon is Muon with the same scale, for every beta2
    (tested); on tall layers the rows differ and so do the methods."""

    FAMILY = "spectral"
    ORACLE_CALLS = 1
    PAPERS = ("2510.05491",)
    TEST_HPARAMS = {"lr": 0.05, "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = base.with_schedule(
        {
            **_common(2e-2, 0.95, scale="rms"),
            "beta2": base.beta(0.95, "per-neuron second-moment EMA beta2"),
            "eps": _eps(1e-10),
            "norm_to": _norm_to("polar"),
            "nesterov": base.nesterov(False),
        }
    )

    @staticmethod
    def init(params, hp, xp):
        return {"m": tuple(xp.zeros_like(x) for x in params), "v": tuple(xp.zeros_like(x[..., :1]) for x in params)}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        m, u = base.momentum(state["m"], grads, hp["beta"], "ema", hp["nesterov"])
        o = tuple(_orth(ui, hp) for ui in u)
        xp = oracle.xp
        v = tuple(base.ema(vi, (oi * oi).mean(axis=-1, keepdims=True), hp["beta2"]) for vi, oi in zip(state["v"], o))
        o_hat = tuple(oi / (xp.sqrt(vi) + hp["eps"]) for oi, vi in zip(o, v))
        return normalized_step(params, o, o_hat, hp, hp["norm_to"]), {"m": m, "v": v}


@register("adamuon")
class AdaMuon:
    """AdaMuon (Si, Zhang & Shen, arXiv 2507.11005; v2/v3 abstract: an element-wise second moment
    of the orthogonalized direction, a sign-stabilized orthogonal update (the momentum is
    sign-transformed before orthogonalization) and an RMS-aligned rescale to Adam's RMS):
    M = beta M + (1 - beta) G; U = M or Nesterov (1 - beta) G + beta M; O = orth(sign(U))
    (``sign = false``: orth(U), the authors' released code, Chongjie-Si/AdaMuon adamuon.py
    @3b84e03, and the v1 paper); V = beta2 V + (1 - beta2) O * O (element-wise);
    O^ = O / (sqrt(V) + eps); X <- (1 - lr wd) X - lr s(m, n) (sqrt(min(m, n)) / ||O^||_F) O^,
    which with ``scale = "rms"`` (default) is the step 0.2 lr sqrt(m n) O^ / ||O^||_F of both the
    paper and the code. No bias correction of V (the code's 1 - beta2^t only moves eps).

    The v3 algorithm box itself was not readable to us (the arXiv html in the search corpus is
    cut after the introduction); a third-party implementation that says it follows it uses one
    beta for both moments, hence the default beta2 = beta = 0.95 (the released code: 0.999).
    With sign = true the method depends on G only through the signs of U: a gradient whose signs
    form a Hadamard pattern H (4 x 4) gives X_t = X_0 - 0.2 lr t H exactly (tested)."""

    FAMILY = "spectral"
    ORACLE_CALLS = 1
    PAPERS = ("2507.11005",)
    TEST_HPARAMS = {"lr": 0.05, "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = base.with_schedule(
        {
            **_common(2e-2, 0.95, scale="rms"),
            "beta2": base.beta(0.95, "element-wise second-moment EMA beta2"),
            "eps": _eps(1e-8),
            "sign": base.Param(True, bool, per_run=False, doc="orthogonalize sign(U) (v2/v3) instead of U (v1)"),
            "nesterov": base.nesterov(True),
        }
    )

    @staticmethod
    def init(params, hp, xp):
        z = tuple(xp.zeros_like(x) for x in params)
        return {"m": z, "v": z}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        xp = oracle.xp
        m, u = base.momentum(state["m"], grads, hp["beta"], "ema", hp["nesterov"])
        o = tuple(_orth(xp.sign(ui) if hp["sign"] else ui, hp) for ui in u)
        v = tuple(base.ema(vi, oi * oi, hp["beta2"]) for vi, oi in zip(state["v"], o))
        o_hat = tuple(oi / (xp.sqrt(vi) + hp["eps"]) for oi, vi in zip(o, v))
        return normalized_step(params, o, o_hat, hp), {"m": m, "v": v}
