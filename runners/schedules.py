"""Learning-rate and momentum schedules, shared by every optimizer (docs/optimizers.md).

A schedule is given by hyperparameters of the optimizer itself (so a config sweeps it like any
other hyperparameter, and runs.csv records it as ``h_*`` columns):

``lr_schedule`` (structural)  the decay shape, one of :data:`LR_SCHEDULES`:
    ``constant``  lr_t = lr
    ``power``     lr_t = lr * t^-lr_p            (horizon-free; the MVR theory's eta_t = eta t^-p)
    ``cosine``    lr_t = lr * (f + (1 - f) (1 + cos(pi s)) / 2)
    ``linear``    lr_t = lr * (1 - (1 - f) s)
    with s = clip((t - warmup) / (horizon - warmup), 0, 1) and f = ``lr_final``.
``warmup``   (per run) linear warmup over the first ``warmup`` steps, multiplying any shape:
             lr_t *= min(1, t / warmup); 0 = none.
``horizon``  (per run) the total number of steps T for ``cosine`` / ``linear`` (required there).
``lr_final`` (per run) the final fraction f of lr for ``cosine`` / ``linear``.
``lr_p``     (per run) the exponent p of ``power``.
``beta_q``   (per run; optimizers with a ``beta``) momentum schedule 1 - beta_t = (1 - beta) t^-q,
             i.e. c = 1 - beta is the value at t = 1 (the MVR theory's 1 - beta_t = c t^-q);
             q = 0 (default) keeps beta constant.

``t`` is the 1-based step number the run loop passes to ``step``. The schedule is applied by
:meth:`runners.registry.Optimizer.step`, so every step function reads the scheduled ``lr`` and
``beta`` from ``hp`` and no optimizer re-implements a schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from problems.params import Param, ParamError

LR_SCHEDULES = ("constant", "power", "cosine", "linear")
NEEDS_HORIZON = ("cosine", "linear")


def hparams(momentum: bool = True) -> dict[str, Param]:
    """The schedule hyperparameters an optimizer declares (``beta_q`` only with a momentum)."""
    out = {
        "lr_schedule": Param("constant", str, per_run=False, choices=LR_SCHEDULES, doc="learning-rate decay shape"),
        "warmup": Param(0, int, low=0, doc="linear warmup steps (0 = none)"),
        "horizon": Param(0, int, low=0, doc="total steps T for cosine / linear decay"),
        "lr_final": Param(0.0, float, low=0.0, high=1.0, doc="final lr fraction for cosine / linear"),
        "lr_p": Param(0.5, float, low=0.0, doc="exponent p of the power schedule lr t^-p"),
    }
    if momentum:
        out["beta_q"] = Param(0.0, float, low=0.0, doc="momentum schedule 1 - beta_t = (1 - beta) t^-q")
    return out


def check(owner: str, hp: dict) -> None:
    """Cross-field checks: cosine / linear need a horizon beyond the warmup."""
    if hp.get("lr_schedule") in NEEDS_HORIZON:
        horizon = np.asarray(hp["horizon"])
        warm = np.asarray(hp["warmup"])
        if np.any(horizon < 1):
            raise ParamError(
                f"horizon: got {hp['horizon']!r}; allowed: an integer >= 1 (the total steps) "
                f"when lr_schedule = {hp['lr_schedule']!r} ({owner})"
            )
        if np.any(np.broadcast_to(warm, np.broadcast(horizon, warm).shape) >= horizon):
            raise ParamError(
                f"warmup: got {hp['warmup']!r}; allowed: fewer than horizon = {hp['horizon']!r} steps ({owner})"
            )


def lr_factor(t: int, hp: dict, xp):
    """lr_t / lr: a Python float or an array broadcasting against (B, 1, 1)."""
    kind = hp["lr_schedule"]
    if kind == "constant":
        f = 1.0
    elif kind == "power":
        f = float(t) ** -hp["lr_p"]
    else:
        w, big_t = hp["warmup"], hp["horizon"]
        s = xp.minimum(xp.maximum((t - w) / xp.maximum(big_t - w, 1.0), 0.0), 1.0)  # clip: CuPy's wrapper syncs
        fin = hp["lr_final"]
        if kind == "cosine":
            f = fin + (1.0 - fin) * 0.5 * (1.0 + xp.cos(math.pi * s))
        else:
            f = 1.0 - (1.0 - fin) * s
    w = hp["warmup"]
    ramp = xp.where(w > 0, xp.minimum(1.0, t / xp.maximum(w, 1.0)), 1.0)
    return f * ramp


def beta_at(t: int, hp: dict, xp):
    """beta_t = 1 - (1 - beta) t^-q (exactly beta where q = 0)."""
    q, beta = hp["beta_q"], hp["beta"]
    return xp.where(q > 0, 1.0 - (1.0 - beta) * float(t) ** -q, beta)


@dataclass(frozen=True)
class Schedule:
    """What to schedule for one bound batch (decided on the host, once): ``lr`` when the shape is
    not constant or some run warms up; ``beta`` when some run has beta_q > 0."""

    lr: bool
    beta: bool

    @classmethod
    def from_hp(cls, hp: dict) -> "Schedule | None":
        lr = "lr_schedule" in hp and (hp["lr_schedule"] != "constant" or bool(np.any(np.asarray(hp["warmup"]) > 0)))
        beta = "beta_q" in hp and bool(np.any(np.asarray(hp["beta_q"]) > 0))
        return cls(lr, beta) if (lr or beta) else None

    def apply(self, hp: dict, t: int, xp) -> dict:
        """``hp`` with ``lr`` and ``beta`` replaced by their values at step ``t``."""
        out = dict(hp)
        if self.lr:
            out["lr"] = hp["lr"] * lr_factor(t, hp, xp)
        if self.beta:
            out["beta"] = beta_at(t, hp, xp)
        return out
