"""SignSGD and Signum (sign of an EMA momentum), Bernstein et al. 2018; PAPERS.md."""
from __future__ import annotations

from problems.params import Param

from ..registry import register


@register("signsgd")
class SignSGD:
    """SignSGD: X <- X - lr sign(G); with beta > 0 it is Signum: M <- beta M + (1 - beta) G,
    X <- X - lr sign(M)."""

    HPARAMS = {
        "lr": Param(1e-3, float, low=0.0, low_open=True, doc="step size"),
        "beta": Param(0.0, float, low=0.0, high=0.999999, doc="EMA momentum (0 = SignSGD)"),
    }

    @staticmethod
    def init(params, hp, xp):
        return {"m": tuple(xp.zeros_like(x) for x in params)}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        beta, xp = hp["beta"], oracle.xp
        m = tuple(beta * mi + (1 - beta) * g for mi, g in zip(state["m"], grads))
        return tuple(x - hp["lr"] * xp.sign(mi) for x, mi in zip(params, m)), {"m": m}
