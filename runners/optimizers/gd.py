"""Euclidean first-order methods: gradient descent, SGD with heavy-ball / Nesterov momentum, and
normalized gradient descent."""

from __future__ import annotations

from ..registry import register
from . import base


class _SGD:
    """X <- (1 - lr wd) X - lr U with U from :func:`base.momentum` (kind ``sum``: the heavy-ball
    buffer M = beta M + G of torch.optim.SGD; Nesterov U = G + beta M). beta = 0 is plain
    (stochastic) gradient descent. Polyak 1964; Sutskever et al. 2013 (Nesterov form)."""

    init = staticmethod(base.momentum_state)

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        b = hp.get("beta", 0.0)
        m, u = base.momentum(state["m"], grads, b, "sum", hp.get("nesterov", False))
        lr, wd = hp["lr"], hp.get("weight_decay", 0.0)
        return tuple(base.decay(x, lr, wd) - lr * ui for x, ui in zip(params, u)), {"m": m}


@register("gd")
class GD(_SGD):
    """Plain (stochastic) gradient descent (Robbins & Monro 1951): X <- X - lr G (``sgd`` with
    beta = 0)."""

    FAMILY = "euclidean"
    ORACLE_CALLS = 1
    PAPERS = ()
    TEST_HPARAMS = {"lr": 0.4}

    HPARAMS = base.with_schedule({"lr": base.lr(1e-2)}, momentum=False)

    @staticmethod
    def init(params, hp, xp):
        return {"m": tuple(0.0 for _ in params)}


@register("sgd")
class SGD(_SGD):
    __doc__ = _SGD.__doc__
    FAMILY = "euclidean"
    ORACLE_CALLS = 1
    PAPERS = ()
    TEST_HPARAMS = {"lr": 0.2, "beta": 0.5, "nesterov": True}
    HPARAMS = base.with_schedule(
        {
            "lr": base.lr(1e-2),
            "beta": base.beta(0.9, "heavy-ball momentum M = beta M + G"),
            "nesterov": base.nesterov(False),
            "weight_decay": base.WEIGHT_DECAY,
        }
    )


@register("normalized_gd")
class NormalizedGD:
    """Normalized gradient descent: X <- X - lr U / ||U||_F, the norm taken over all layers
    together (the LMO of the Euclidean ball over the whole parameter; zero maps to zero). U is an
    EMA momentum of G (beta = 0: the gradient itself), optionally Nesterov (Cutkosky & Mehta
    2020, arXiv 2002.03305, "Momentum improves normalized SGD")."""

    FAMILY = "euclidean"
    ORACLE_CALLS = 1
    PAPERS = ()
    TEST_HPARAMS = {"lr": 0.1, "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = base.with_schedule(
        {
            "lr": base.lr(1e-2),
            "beta": base.beta(0.0, "EMA momentum (0 = normalized GD)"),
            "nesterov": base.nesterov(False),
        }
    )

    init = staticmethod(base.momentum_state)

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        m, u = base.momentum(state["m"], grads, hp["beta"], "ema", hp["nesterov"])
        nrm = base.fro_layers(u)
        return tuple(x - hp["lr"] * base.safe_div(ui, nrm) for x, ui in zip(params, u)), {"m": m}
