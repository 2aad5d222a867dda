"""Muon and its relatives: the spectral-norm LMO step applied to a momentum (PAPERS.md).

``muon``        K. Jordan's reference (2024), torch.optim.Muon, optax.contrib.muon.
``spectral_sd`` spectral steepest descent, Muon scaled by the nuclear norm of the momentum
                (Li & Hong, "A note on the convergence of Muon", seed 002).
``ef_muon``     Muon with error feedback (Karimireddy et al. 2019, arXiv 1901.09847; the fix of
                the convex-Lipschitz counterexample, Parshakova et al., arXiv 2605.08980).
``muon_mvr1`` / ``muon_mvr2``  momentum variance reduction (arXiv 2509.15816, seed 000).

All of them: O = orth(U) from :func:`runners.orth.orthogonalize` (``orth`` = svd, ns_keller,
polar_express, a registered coefficient set or an ``ns:`` spec; ``ns_steps``; its number format
``orth_precision``), shape scale s(m, n)
(``scale``), decoupled weight decay, and a zero or tiny U gives a zero or correctly oriented
step (the input is max-abs-normalized before the kernels, which map zero to zero).
"""

from __future__ import annotations

import numpy as np

from problems.registry import Registry

from ..orth import orthogonalize
from ..registry import register
from . import base


def _common(lr: float, b: float, orth: str = "ns_keller", scale: str = "original") -> dict:
    return {
        "lr": base.lr(lr),
        "beta": base.beta(b, "EMA momentum"),
        "orth": base.orth(orth),
        "ns_steps": base.NS_STEPS,
        "orth_precision": base.ORTH_PRECISION,
        "scale": base.scale(scale),
        "weight_decay": base.WEIGHT_DECAY,
    }


def orth_step(params, us, hp, factors=None):
    """X <- (1 - lr wd) X - lr s(m, n) [factor] orth(U), per layer."""
    sfn, lr = base.SCALES[hp["scale"]], hp["lr"]
    out = []
    for i, (x, u) in enumerate(zip(params, us)):
        step = (lr * sfn(*x.shape[-2:])) * orthogonalize(u, hp["orth"], hp["ns_steps"], hp["orth_precision"])
        if factors is not None:
            step = factors[i] * step
        out.append(base.decay(x, lr, hp["weight_decay"]) - step)
    return tuple(out)


@register("muon")
class Muon:
    """Muon (K. Jordan 2024; PAPERS.md): M = beta M + (1 - beta) G (``momentum = "sum"``: M = beta M + G);
    U = M, or with Nesterov U = (1 - beta) G + beta M (sum: G + beta M); X <- (1 - lr wd) X - lr s orth(U)."""

    FAMILY = "spectral"
    ORACLE_CALLS = 1
    PAPERS = ("2505.23737", "2509.15816")
    TEST_HPARAMS = {"lr": 0.05, "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = base.with_schedule(
        {
            **_common(2e-2, 0.95),
            "nesterov": base.nesterov(True),
            "momentum": base.MOMENTUM_KIND,
        }
    )

    init = staticmethod(base.momentum_state)

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        m, u = base.momentum(state["m"], grads, hp["beta"], hp["momentum"], hp["nesterov"])
        return orth_step(params, u, hp), {"m": m}


@register("spectral_sd")
class SpectralSD(Muon):
    """Spectral steepest descent with momentum (Li & Hong, seed 002):
    X <- X - lr s ||U||_* orth(U), U the (Nesterov) momentum of ``muon``; the exact nuclear norm
    (from singular values). Default scale "none", orth "svd" (the exact LMO)."""

    FAMILY = "spectral"
    ORACLE_CALLS = 1
    PAPERS = ("2502.02900",)
    TEST_HPARAMS = {"lr": 0.2, "beta": 0.5}

    HPARAMS = base.with_schedule(
        {
            **_common(1e-2, 0.95, orth="svd", scale="none"),
            "nesterov": base.nesterov(False),
            "momentum": base.MOMENTUM_KIND,
        }
    )

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        m, u = base.momentum(state["m"], grads, hp["beta"], hp["momentum"], hp["nesterov"])
        return orth_step(params, u, hp, factors=[base.nuclear(ui) for ui in u]), {"m": m}


def _compress_scaled(p, hp):
    """(||P||_* / min(m, n)) orth(P): a contractive compressor in Frobenius norm,
    ||C(P) - P||_F^2 = ||P||_F^2 - ||P||_*^2 / min(m, n) <= (1 - 1/min(m, n)) ||P||_F^2 (exact for
    orth = svd); the spectral analogue of the scaled sign of EF-SignSGD."""
    return (base.nuclear(p) / min(p.shape[-2:])) * orthogonalize(p, hp["orth"], hp["ns_steps"], hp["orth_precision"])


def _compress_unit(p, hp):
    """lr s orth(P): Muon's own step length."""
    return (hp["lr"] * base.SCALES[hp["scale"]](*p.shape[-2:])) * orthogonalize(
        p, hp["orth"], hp["ns_steps"], hp["orth_precision"]
    )


COMPRESSORS = Registry("compressor", "error-feedback compressor")  # name -> fn(P, hp)
COMPRESSORS.add("scaled", _compress_scaled)
COMPRESSORS.add("unit", _compress_unit)


@register("ef_muon")
class EFMuon(Muon):
    """Muon with error feedback (EF: Karimireddy et al., arXiv 1901.09847; the fix in
    arXiv 2605.08980): P = E + lr U (U the momentum direction of ``muon``),
    D = C(P), X <- (1 - lr wd) X - D, E <- P - D. The virtual iterate X - E moves by -lr U
    exactly (SGD with momentum), which is what restores convergence on convex Lipschitz
    problems. C = ``compressor``: "scaled" (||P||_*/min(m, n)) orth(P) (contractive; default) or
    "unit" lr s orth(P) (Muon's step length; ``scale`` applies to this one only).
    The exact form used by arXiv 2605.08980 was not available to us (docs/optimizers.md)."""

    FAMILY = "spectral"
    ORACLE_CALLS = 1
    PAPERS = ("2605.08980",)
    TEST_HPARAMS = {"lr": 0.2, "beta": 0.5}

    HPARAMS = base.with_schedule(
        {
            **_common(1e-2, 0.95, orth="svd"),
            "nesterov": base.nesterov(True),
            "momentum": base.MOMENTUM_KIND,
            "compressor": base.Param(
                "scaled", str, per_run=False, choices=tuple(COMPRESSORS), doc="error-feedback compressor"
            ),
        }
    )

    @staticmethod
    def init(params, hp, xp):
        z = tuple(xp.zeros_like(x) for x in params)
        return {"m": z, "e": z}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        m, u = base.momentum(state["m"], grads, hp["beta"], hp["momentum"], hp["nesterov"])
        lr, comp = hp["lr"], COMPRESSORS[hp["compressor"]]
        p = tuple(e + lr * ui for e, ui in zip(state["e"], u))
        d = tuple(comp(pi, hp) for pi in p)
        new = tuple(base.decay(x, lr, hp["weight_decay"]) - di for x, di in zip(params, d))
        return new, {"m": m, "e": tuple(pi - di for pi, di in zip(p, d))}


def _stored_gradient_state(params, hp, xp):
    """The momentum and a stored gradient per layer, both zero (MVR1, MVR3)."""
    return {"m": tuple(xp.zeros_like(x) for x in params), "g": tuple(xp.zeros_like(x) for x in params)}


class _MuonMVR:
    """Muon-MVR (arXiv 2509.15816, seed 000; from the authors' public code description):
    C = G + gamma beta / (1 - beta) (G - G_last), optionally scaled to ||C||_F <= 1 (``clip``,
    per layer); M = beta M + (1 - beta) C; X <- (1 - lr wd) X - lr s orth(M). gamma = 0 is Muon
    without Nesterov. With gamma = 1 and the two-batch G_last this is STORM on M.

    Degenerate settings (a config error unless ``allow_degenerate``; docs/optimizers.md):
    gamma = 0 (exactly ``muon`` with nesterov = false) and beta = 0 without a momentum schedule
    (C = G, M = G: momentum-free Muon, whatever gamma)."""

    HPARAMS = base.with_schedule(
        {
            **_common(2e-2, 0.95),
            "gamma": base.Param(0.025, float, low=0.0, doc="variance-reduction weight (0 = Muon)"),
            "clip": base.Param(False, bool, per_run=False, doc="scale C to ||C||_F <= 1"),
            "allow_degenerate": base.ALLOW_DEGENERATE,
        }
    )

    @staticmethod
    def check(hp):
        base.refuse_degenerate(
            hp, "gamma", np.asarray(hp["gamma"]) == 0, "gamma > 0 (gamma = 0 is exactly muon with nesterov = false)"
        )
        base.refuse_degenerate(
            hp,
            "beta",
            base.zero_momentum(hp),
            "beta > 0 or a momentum schedule beta_q > 0 (with beta = 0 throughout, "
            "M_t = G_t: momentum-free Muon, whatever gamma)",
        )

    @staticmethod
    def _update(params, state, grads, g_last, hp):
        c = tuple(base.mvr_correction(g, gl, hp["gamma"], hp["beta"], hp["clip"]) for g, gl in zip(grads, g_last))
        m, _ = base.momentum(state["m"], c, hp["beta"], "ema")
        return orth_step(params, m, hp), m


@register("muon_mvr1")
class MuonMVR1(_MuonMVR):
    __doc__ = (
        "Muon-MVR1, one batch: G_last = G(X_{t-1}; xi_{t-1}), the previous step's gradient (stored; "
        "one oracle call per step; at t = 1, G_last = G). " + _MuonMVR.__doc__
    )

    FAMILY = "spectral"
    ORACLE_CALLS = 1
    PAPERS = ("2509.15816",)
    TEST_HPARAMS = {"lr": 0.05, "lr_schedule": "cosine", "horizon": 200}

    @staticmethod
    def check(hp):
        """Besides the shared degenerate settings: gamma = 1 with beta_1 = beta = 0 (PAPERS.md:
        M_t - G_t = beta_t (M_{t-1} - G_{t-1}) and M_1 = G_1, so M_t = G_t exactly, with or
        without a momentum schedule: momentum-free Muon)."""
        _MuonMVR.check(hp)
        base.refuse_degenerate(
            hp,
            "gamma",
            (np.asarray(hp["gamma"]) == 1) & (np.asarray(hp["beta"]) == 0),
            "gamma != 1 where beta (= beta_1, the momentum at t = 1) is 0 (with gamma = 1 "
            "and beta_1 = 0, M_t = G_t exactly: momentum-free Muon; PAPERS.md)",
        )

    init = staticmethod(_stored_gradient_state)

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        new, m = _MuonMVR._update(params, state, grads, grads if t == 1 else state["g"], hp)
        return new, {"m": m, "g": grads}


@register("muon_mvr2")
class MuonMVR2(_MuonMVR):
    __doc__ = (
        "Muon-MVR2, two batches: G_last = G(X_{t-1}; xi_t), the previous point under the current "
        "draw (two oracle calls every step; at t = 1 the previous point is X_1 itself). " + _MuonMVR.__doc__
    )

    FAMILY = "spectral"
    ORACLE_CALLS = 2
    PAPERS = ("2509.15816",)
    TEST_HPARAMS = {"lr": 0.05, "lr_schedule": "cosine", "horizon": 200}

    @staticmethod
    def init(params, hp, xp):
        return {"m": tuple(xp.zeros_like(x) for x in params), "prev": tuple(params)}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads, g_last = base.two_point(params, state, oracle)
        new, m = _MuonMVR._update(params, state, grads, g_last, hp)
        return new, {"m": m, "prev": tuple(params)}


@register("muon_mvr3")
class MuonMVR3(_MuonMVR):
    __doc__ = (
        "Muon-MVR3, two batches, approximate (the public code's third mode, is_approx = False; "
        "PAPERS.md): G_last = G(X_t; xi_{t-1}), the previous draw at the current point. The oracle "
        "gives only the step's own draw, so step t makes its second call at the new point, "
        "G(X_{t+1}; xi_t), and stores it for step t + 1 (two oracle calls every step; at t = 1, "
        "G_last = G). Source: the authors' code, MaeChd/muon-eq @99b6c8b "
        "(llm-opt-baseline-npu/llama2_pretrain/scripts/pretrain_c4_dist.py: 'muon-mvr3' replays the "
        "previous batch at the current parameters before update_last_grad(); 'muon-mvr2' replays the "
        "current batch at the previous parameters), which agrees with PAPERS.md; a third-party copy of "
        "the MaeChd/MUON-MVR README calls the same mode 'dual-batch, approximate' (its formula was cut in "
        "the copy we read). The authors' optimizer starts from last_grad = 0 at t = 1. With an exact "
        "oracle G_last = G and MVR3 is muon with nesterov = false; with additive noise independent of X "
        "the correction is gamma beta / (1 - beta) (xi_t - xi_{t-1}), noise only (the first is tested). "
        + _MuonMVR.__doc__
    )

    FAMILY = "spectral"
    ORACLE_CALLS = 2
    PAPERS = ("2509.15816",)
    TEST_HPARAMS = {"lr": 0.05, "lr_schedule": "cosine", "horizon": 200}

    init = staticmethod(_stored_gradient_state)

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        new, m = _MuonMVR._update(params, state, grads, grads if t == 1 else state["g"], hp)
        return new, {"m": m, "g": oracle(new)}
