"""Gradient descent (with a stochastic oracle: SGD)."""
from __future__ import annotations

from problems.params import Param

from ..registry import register


@register("gd")
class GD:
    """Plain (stochastic) gradient descent: X <- X - lr G."""

    HPARAMS = {"lr": Param(1e-2, float, low=0.0, low_open=True, doc="step size")}

    @staticmethod
    def init(params, hp, xp):
        return {}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        return tuple(x - hp["lr"] * g for x, g in zip(params, grads)), state
