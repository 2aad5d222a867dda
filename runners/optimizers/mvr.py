"""STORM: Euclidean momentum variance reduction (Cutkosky & Orabona 2019, arXiv 1905.10018;
PAPERS.md)."""

from __future__ import annotations

from ..registry import register
from . import base


@register("storm")
class STORM:
    """STORM (Cutkosky & Orabona 2019, arXiv 1905.10018; PAPERS.md):
    d_t = g(x_t; xi_t) + beta (d_{t-1} - g(x_{t-1}; xi_t)) (beta = 1 - a_t), x <- x - lr d_t:
    the same draw xi_t at the current and the previous point (two oracle calls every step). At
    t = 1 the previous point is x_1 and d_0 = g(x_1; xi_1), so d_1 = g(x_1; xi_1). With an exact
    oracle the correction cancels the momentum and STORM is gradient descent."""

    FAMILY = "euclidean"
    ORACLE_CALLS = 2
    PAPERS = ("1905.10018",)
    TEST_HPARAMS = {"lr": 0.4, "beta": 0.5}

    HPARAMS = base.with_schedule(
        {
            "lr": base.lr(1e-2),
            "beta": base.beta(0.9, "1 - a: weight of the corrected previous estimate"),
            "allow_degenerate": base.ALLOW_DEGENERATE,
        }
    )

    @staticmethod
    def check(hp):
        """beta = 0 throughout makes d_t = g(x_t; xi_t): SGD at twice the oracle calls."""
        base.refuse_degenerate(
            hp,
            "beta",
            base.zero_momentum(hp),
            "beta > 0 or a momentum schedule beta_q > 0 (with beta = 0 throughout, d_t = g(x_t; xi_t): "
            "gd at twice the oracle calls)",
        )

    @staticmethod
    def init(params, hp, xp):
        return {"d": tuple(xp.zeros_like(x) for x in params), "prev": tuple(params)}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads, g_prev = base.two_point(params, state, oracle)
        d = base.storm_layers(state["d"], grads, g_prev, hp["beta"], t)
        return tuple(x - hp["lr"] * di for x, di in zip(params, d)), {"d": d, "prev": tuple(params)}
