"""Sign methods: SignSGD, Signum (Bernstein et al. 2018, arXiv 1802.04434) and Lion (Chen et al.
2023, arXiv 2302.06675); PAPERS.md. The sign is the LMO direction of the max-abs-entry norm
(``base.NORMS["sign"]``); sign(0) = 0, so a zero gradient gives a zero step."""

from __future__ import annotations

from ..registry import register
from . import base

_sign = base.NORMS["sign"].direction


class _Signum:
    """M <- beta M + (1 - beta) G; X <- (1 - lr wd) X - lr sign(U), U = M (or the Nesterov
    direction (1 - beta) G + beta M)."""

    init = staticmethod(base.momentum_state)

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        m, u = base.momentum(state["m"], grads, hp["beta"], "ema", hp.get("nesterov", False))
        lr, wd = hp["lr"], hp.get("weight_decay", 0.0)
        return tuple(base.decay(x, lr, wd) - lr * _sign(ui) for x, ui in zip(params, u)), {"m": m}


@register("signsgd")
class SignSGD(_Signum):
    """SignSGD (Bernstein et al. 2018, arXiv 1802.04434): X <- X - lr sign(G); with beta > 0 it is Signum:
    M <- beta M + (1 - beta) G, X <- X - lr sign(M)."""

    FAMILY = "sign"
    ORACLE_CALLS = 1
    PAPERS = ("1802.04434",)
    TEST_HPARAMS = {"lr": 0.02, "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = base.with_schedule(
        {
            "lr": base.lr(1e-3),
            "beta": base.beta(0.0, "EMA momentum (0 = SignSGD)"),
        }
    )


@register("signum")
class Signum(_Signum):
    __doc__ = "Signum (Bernstein et al. 2018, arXiv 1802.04434), signed EMA momentum. " + _Signum.__doc__
    FAMILY = "sign"
    ORACLE_CALLS = 1
    PAPERS = ("1802.04434",)
    TEST_HPARAMS = {"lr": 0.02, "lr_schedule": "cosine", "horizon": 200}
    HPARAMS = base.with_schedule(
        {
            "lr": base.lr(1e-3),
            "beta": base.beta(0.9, "EMA momentum"),
            "nesterov": base.nesterov(False),
            "weight_decay": base.WEIGHT_DECAY,
        }
    )


@register("lion")
class Lion:
    """Lion (Chen et al. 2023, arXiv 2302.06675): C = beta M + (1 - beta) G;
    X <- (1 - lr wd) X - lr sign(C); M <- beta2 M + (1 - beta2) G."""

    FAMILY = "sign"
    ORACLE_CALLS = 1
    PAPERS = ("2302.06675",)
    TEST_HPARAMS = {"lr": 0.02, "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = base.with_schedule(
        {
            "lr": base.lr(1e-4),
            "beta": base.beta(0.9, "interpolation beta1 of the update direction"),
            "beta2": base.beta(0.99, "momentum beta2 of the stored EMA"),
            "weight_decay": base.WEIGHT_DECAY,
        }
    )

    init = staticmethod(base.momentum_state)

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        lr, wd = hp["lr"], hp["weight_decay"]
        new = tuple(
            base.decay(x, lr, wd) - lr * _sign(base.ema(mi, g, hp["beta"]))
            for x, mi, g in zip(params, state["m"], grads)
        )
        return new, {"m": tuple(base.ema(mi, g, hp["beta2"]) for mi, g in zip(state["m"], grads))}
