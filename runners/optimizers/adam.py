"""Adam / AdamW (Kingma & Ba 2014, arXiv 1412.6980; decoupled weight decay: Loshchilov & Hutter,
arXiv 1711.05101), the practical method that SignSGD stands in for in "Phases of Muon"
(PAPERS.md)."""

from __future__ import annotations

from ..registry import register
from . import base


@register("adam")
class Adam:
    """Adam / AdamW (arXiv 1412.6980; decoupled decay arXiv 1711.05101; PAPERS.md):
    M <- beta M + (1 - beta) G;  V <- beta2 V + (1 - beta2) G^2;
    X <- (1 - lr wd) X - lr M^ / (sqrt(V^) + eps), with the bias corrections
    M^ = M / (1 - prod beta_s), V^ = V / (1 - beta2^t) (the product form also covers a
    scheduled beta_t)."""

    FAMILY = "adaptive"
    ORACLE_CALLS = 1
    PAPERS = ("1412.6980",)
    TEST_HPARAMS = {"lr": 0.05, "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = base.with_schedule(
        {
            "lr": base.lr(1e-3),
            "beta": base.beta(0.9, "first-moment EMA beta1"),
            "beta2": base.beta(0.999, "second-moment EMA beta2"),
            "eps": base.Param(1e-8, float, low=0.0, low_open=True, doc="added to sqrt(V^)"),
            "weight_decay": base.WEIGHT_DECAY,
        }
    )

    @staticmethod
    def init(params, hp, xp):
        z = tuple(xp.zeros_like(x) for x in params)
        return {"m": z, "v": z, "p1": 1.0, "p2": 1.0}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        b1, b2, lr = hp["beta"], hp["beta2"], hp["lr"]
        m, _ = base.momentum(state["m"], grads, b1, "ema")
        v = tuple(base.ema(vi, g * g, b2) for vi, g in zip(state["v"], grads))
        p1, p2 = state["p1"] * b1, state["p2"] * b2
        new = tuple(
            base.decay(x, lr, hp["weight_decay"]) - lr * base.adam_direction(mi, vi, p1, p2, hp["eps"])
            for x, mi, vi in zip(params, m, v)
        )
        return new, {"m": m, "v": v, "p1": p1, "p2": p2}
