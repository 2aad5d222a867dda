"""The registry of optimizers: ``runners.make(name, **hp)``.

An optimizer kind is a class with ``HPARAMS`` (a dict of :class:`problems.Param`) and two pure
functions, ``init(params, hp, xp) -> state`` and ``step(params, state, oracle, t, hp) ->
(params, state)``. Numeric per-run hyperparameters reach ``step`` as arrays of shape (B, 1, 1)
that broadcast against each (B, m, n) layer; structural ones (``per_run=False``) as scalars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from problems.params import Param, check_all
from problems.registry import Registry

from . import schedules

REGISTRY = Registry("name", "optimizer")  # name -> optimizer class

# What every optimizer class declares besides HPARAMS/init/step (analysis reads FAMILY from runs.csv's
# ``optimizer_family``; nothing decides from a substring of a name):
# FAMILY: the geometry of the step ("preconditioned": Kronecker-factored matrix preconditioners, Shampoo / SOAP)
FAMILIES = ("spectral", "sign", "euclidean", "adaptive", "layerwise", "preconditioned")
# ORACLE_CALLS: stochastic-gradient calls per step (1, or 2 for two-point / STORM-type methods);
# PAPERS: arXiv ids whose algorithm or results the class implements (docstrings cite them);
# TEST_HPARAMS: a small valid hyperparameter set under which the method converges on a
# well-conditioned quadratic (the generic optimizer suite, tests/runners/test_zoo_generic.py).


def register(name: str):
    """Class decorator: check the class's declarations and register it under ``name``."""

    def deco(cls):
        if getattr(cls, "FAMILY", None) not in FAMILIES:
            raise ValueError(
                f"optimizer {name!r}: FAMILY: got {getattr(cls, 'FAMILY', None)!r}; allowed: {', '.join(FAMILIES)}"
            )
        if getattr(cls, "ORACLE_CALLS", None) not in (1, 2):
            raise ValueError(
                f"optimizer {name!r}: ORACLE_CALLS: got {getattr(cls, 'ORACLE_CALLS', None)!r}; allowed: 1, 2"
            )
        REGISTRY.add(name, cls)
        cls.name = name
        return cls

    return deco


def get(name: str) -> type:
    return REGISTRY.get(name)


def hparams(name: str) -> dict[str, Param]:
    return get(name).HPARAMS


@dataclass
class Optimizer:
    """An optimizer kind with its hyperparameters (scalars or per-run arrays of shape (B,))."""

    kind: type
    hp: dict

    @property
    def name(self) -> str:
        return self.kind.name

    def bind(self, runs: int, backend) -> dict:
        """Hyperparameters as the step functions see them on ``backend`` for ``runs`` runs.
        When a learning-rate or momentum schedule is active, ``hp["_schedule"]`` holds it
        (:class:`runners.schedules.Schedule`) and :meth:`step` applies it."""
        out = {}
        for k, decl in self.kind.HPARAMS.items():
            v = decl.check(k, self.hp[k], runs) if isinstance(self.hp[k], np.ndarray) else self.hp[k]
            if decl.per_run and decl.type in (float, int):
                out[k] = backend.asarray(np.broadcast_to(np.asarray(v, np.float64), (runs,))[:, None, None])
            else:
                out[k] = v
        sched = schedules.Schedule.from_hp(self.hp)
        if sched is not None:
            out["_schedule"] = sched
        return out

    def init(self, params, hp, xp):
        return self.kind.init(params, hp, xp)

    def step(self, params, state, oracle, t, hp):
        """One step; ``hp["lr"]`` and ``hp["beta"]`` are replaced by their scheduled values at
        step ``t`` (1-based) before the kind's step function sees them."""
        sched = hp.get("_schedule")
        if sched is not None:
            hp = sched.apply(hp, t, oracle.xp)
        return self.kind.step(params, state, oracle, t, hp)


def make(name: str, **hp) -> Optimizer:
    """Optimizer ``name`` with hyperparameters ``hp`` (unknown names are an error listing the
    allowed ones; missing ones take their defaults)."""
    kind = get(name)
    hp = check_all(f"optimizer {name!r}", kind.HPARAMS, hp)
    schedules.check(f"optimizer {name!r}", hp)
    if hasattr(kind, "check"):  # optional cross-field checks of the kind
        kind.check(hp)
    return Optimizer(kind=kind, hp=hp)
