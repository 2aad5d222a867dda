"""Muon: orthogonalized momentum (K. Jordan's reference, 2024; torch.optim.Muon; PAPERS.md).

    M_t = beta M_{t-1} + (1 - beta) G_t
    U_t = (1 - beta) G_t + beta M_t   (Nesterov)   or   U_t = M_t
    X_t = X_{t-1} - lr * s(m, n) * orth(U_t)

with ``orth`` from :mod:`runners.orth` and the scale rule s = sqrt(max(1, m/n)) ("original"),
0.2 sqrt(max(m, n)) ("rms", Moonlight's match-AdamW-RMS rule), or 1 ("none").
"""
from __future__ import annotations

import math

from problems.params import Param

from ..orth import ORTH
from ..registry import register

SCALES = {
    "original": lambda m, n: math.sqrt(max(1.0, m / n)),
    "rms": lambda m, n: 0.2 * math.sqrt(max(m, n)),
    "none": lambda m, n: 1.0,
}


@register("muon")
class Muon:
    """Muon: EMA momentum, optional Nesterov, orthogonalized update."""

    HPARAMS = {
        "lr": Param(2e-2, float, low=0.0, low_open=True, doc="step size"),
        "beta": Param(0.95, float, low=0.0, high=0.999999, doc="EMA momentum"),
        "nesterov": Param(True, bool, per_run=False, doc="Nesterov look-ahead"),
        "orth": Param("ns_keller", str, per_run=False, choices=tuple(ORTH), doc="orthogonalization"),
        "scale": Param("original", str, per_run=False, choices=tuple(SCALES), doc="shape scale rule"),
    }

    @staticmethod
    def init(params, hp, xp):
        return {"m": tuple(xp.zeros_like(x) for x in params)}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        beta, orth, scale = hp["beta"], ORTH[hp["orth"]], SCALES[hp["scale"]]
        m = tuple(beta * mi + (1 - beta) * g for mi, g in zip(state["m"], grads))
        u = tuple((1 - beta) * g + beta * mi for g, mi in zip(grads, m)) if hp["nesterov"] else m
        new = tuple(x - (hp["lr"] * scale(*x.shape[-2:])) * orth(ui) for x, ui in zip(params, u))
        return new, {"m": m}
