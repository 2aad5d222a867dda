"""Gluon: layer-wise LMO steps with a norm per layer (Riabinin et al. 2025, arXiv 2505.13416),
its constrained Scion form (Pethick et al. 2025, arXiv 2502.07529), and the Gluon-MVR variants
(Qian et al., arXiv 2512.16598, seed 003; rules from a secondary review, PAPERS.md).

Per layer i with norm ||.||_(i) (``norms``: spectral, sign, row, column, frobenius; the LMO table
is ``base.NORMS``) and its momentum M_i:

    radius step:  X_i <- X_i - t_i dir_i(M_i),  t_i = lr r_i            (``radii`` r_i)
    (L0, L1) step: t_i = lr ||M_i||_(i)* / (L0_i + L1_i ||M_i||_(i)*)    (``step = "l0l1"``;
                   Gluon's step for layer-wise (L0, L1)-smoothness, lr = 1 is the theory's)
    constrained (Scion, ``constrained = true``, radius step only, lr <= 1):
                   X_i <- (1 - lr) X_i - lr r_i dir_i(M_i)

where dir_i(M) maximizes <M, Z> over the unit ball (so the LMO of the ball of radius t is
-t dir_i(M)). L0_i = ``l0`` x the i-th entry of ``l0_layers`` (likewise L1).
"""

from __future__ import annotations

import numpy as np

from problems.params import ParamError

from ..registry import register
from . import base

STEPS = ("radius", "l0l1")


def _hparams(beta_default: float) -> dict:
    return base.with_schedule(
        {
            "lr": base.lr(2e-2),
            "beta": base.beta(beta_default, "momentum"),
            "norms": base.LayerList(
                "spectral", str, per_run=False, choices=tuple(base.NORMS), doc="norm of each layer"
            ),
            "radii": base.LayerList("1", str, per_run=False, doc="radius multiplier r_i of each layer"),
            "step": base.Param(
                "radius", str, per_run=False, choices=STEPS, doc="radius: t_i = lr r_i; l0l1: (L0, L1)-adaptive"
            ),
            "l0": base.Param(1.0, float, low=0.0, low_open=True, doc="L0 (times l0_layers)"),
            "l1": base.Param(0.0, float, low=0.0, doc="L1 (times l1_layers)"),
            "l0_layers": base.LayerList("1", str, per_run=False, doc="per-layer multipliers of l0"),
            "l1_layers": base.LayerList("1", str, per_run=False, doc="per-layer multipliers of l1"),
            "constrained": base.Param(False, bool, per_run=False, doc="Scion's constrained form (1 - lr) X - lr r dir"),
            "orth": base.orth("ns_keller"),
            "ns_steps": base.NS_STEPS,
            "orth_precision": base.ORTH_PRECISION,
        }
    )


def lmo_step(params, ms, hp):
    """The layer-wise LMO update shared by gluon, gluon_mvr1 and gluon_mvr2."""
    k = len(params)
    norms = base.per_layer("norms", hp["norms"], k, tuple(base.NORMS))
    radii = base.per_layer("radii", hp["radii"], k)
    l0s = base.per_layer("l0_layers", hp["l0_layers"], k)
    l1s = base.per_layer("l1_layers", hp["l1_layers"], k)
    lr, out = hp["lr"], []
    for x, m, name, r, a0, a1 in zip(params, ms, norms, radii, l0s, l1s):
        norm = base.NORMS[name]
        d = norm.direction(m, hp["orth"], hp["ns_steps"], hp["orth_precision"])
        if hp["constrained"]:
            out.append((1 - lr) * x - (lr * r) * d)
            continue
        if hp["step"] == "radius":
            t = lr * r
        else:
            dual = norm.dual(m)
            t = lr * dual / (a0 * hp["l0"] + a1 * hp["l1"] * dual)
        out.append(x - t * d)
    return tuple(out)


class _GluonBase:
    @staticmethod
    def check(hp):
        if hp["constrained"]:
            if hp["step"] != "radius":
                raise ParamError(
                    "constrained: got True with step = 'l0l1'; allowed: the constrained form with step = 'radius'"
                )
            if np.any(np.asarray(hp["lr"]) > 1):
                raise ParamError(f"lr: got {hp['lr']!r}; allowed: a number in (0, 1] with constrained = true")


@register("gluon")
class Gluon(_GluonBase):
    """Gluon (arXiv 2505.13416) / Scion (arXiv 2502.07529): M_i = beta M_i + (1 - beta) G_i, then the layer-wise
    LMO step (module doc)."""

    FAMILY = "layerwise"
    ORACLE_CALLS = 1
    PAPERS = ("2512.16598",)
    TEST_HPARAMS = {"lr": 0.05, "norms": "spectral,row", "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = _hparams(0.9)

    init = staticmethod(base.momentum_state)

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        m, _ = base.momentum(state["m"], grads, hp["beta"], "ema")
        return lmo_step(params, m, hp), {"m": m}


@register("gluon_mvr1")
class GluonMVR1(_GluonBase):
    """Gluon-MVR-1 (arXiv 2512.16598, seed 003; via PAPERS.md): M_i^k = g_i(X^k; xi^k)
    + beta (M_i^{k-1} - g_i(X^{k-1}; xi^k)) (STORM on the momentum, two oracle calls per step;
    M^1 = g(X^1; xi^1)), then the layer-wise LMO step."""

    FAMILY = "layerwise"
    ORACLE_CALLS = 2
    PAPERS = ("2512.16598",)
    TEST_HPARAMS = {"lr": 0.05, "norms": "sign,spectral", "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = {**_hparams(0.9), "allow_degenerate": base.ALLOW_DEGENERATE}

    @staticmethod
    def check(hp):
        """Besides Gluon's checks: beta = 0 throughout makes M = g(X; xi), i.e. gluon with beta = 0 at
        twice the oracle calls. (With step = "radius", spectral norms, unit radii and beta_1 = 0 this
        is muon_mvr2 at gamma = 1 up to rounding on square layers: two papers' names for one
        method, not a degenerate setting, so not refused; tests/runners/test_degenerate.py.)"""
        _GluonBase.check(hp)
        base.refuse_degenerate(
            hp,
            "beta",
            base.zero_momentum(hp),
            "beta > 0 or a momentum schedule beta_q > 0 (with beta = 0 throughout, M = g(X; xi): "
            "gluon with beta = 0 at twice the oracle calls)",
        )

    @staticmethod
    def init(params, hp, xp):
        return {"m": tuple(xp.zeros_like(x) for x in params), "prev": tuple(params)}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads, g_prev = base.two_point(params, state, oracle)
        m = base.storm_layers(state["m"], grads, g_prev, hp["beta"], t)
        return lmo_step(params, m, hp), {"m": m, "prev": tuple(params)}


@register("gluon_mvr2")
class GluonMVR2(_GluonBase):
    """Gluon-MVR-2 (arXiv 2512.16598, seed 003; via PAPERS.md): g_i^k = g_i(X^k; xi^k)
    + (1 - q)(g_i^{k-1} - g_i(X^{k-1}; xi^k)) (STORM with weight 1 - q; g^1 = g(X^1; xi^1)),
    M_i = beta M_i + (1 - beta) g_i, then the LMO step."""

    FAMILY = "layerwise"
    ORACLE_CALLS = 2
    PAPERS = ("2512.16598",)
    TEST_HPARAMS = {"lr": 0.05, "norms": "column,frobenius", "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = {
        **_hparams(0.9),
        "q": base.Param(0.1, float, low=0.0, high=1.0, doc="STORM weight a = q of the inner estimate"),
        "allow_degenerate": base.ALLOW_DEGENERATE,
    }

    @staticmethod
    def check(hp):
        """Besides Gluon's checks: q = 1 drops the correction (g^k = g(X^k; xi^k): gluon at twice
        the oracle calls); beta = 0 throughout makes M = g^k, i.e. gluon_mvr1 with beta = 1 - q."""
        _GluonBase.check(hp)
        base.refuse_degenerate(
            hp,
            "q",
            np.asarray(hp["q"]) == 1,
            "q < 1 (q = 1 drops the STORM correction: gluon at twice the oracle calls)",
        )
        base.refuse_degenerate(
            hp,
            "beta",
            base.zero_momentum(hp),
            "beta > 0 or a momentum schedule beta_q > 0 (with beta = 0 throughout, "
            "gluon_mvr2 is gluon_mvr1 with beta = 1 - q)",
        )

    @staticmethod
    def init(params, hp, xp):
        z = tuple(xp.zeros_like(x) for x in params)
        return {"m": z, "g": z, "prev": tuple(params)}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads, g_prev = base.two_point(params, state, oracle)
        v = base.storm_layers(state["g"], grads, g_prev, 1 - hp["q"], t)
        m, _ = base.momentum(state["m"], v, hp["beta"], "ema")
        return lmo_step(params, m, hp), {"m": m, "g": v, "prev": tuple(params)}
