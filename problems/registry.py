"""The registry of problem kinds: ``problems.make(name, runs=..., seed=..., **params)``."""
from __future__ import annotations

from dataclasses import dataclass

from .backend import get_backend
from .params import Param, ParamError

REGISTRY: dict[str, "ProblemKind"] = {}


@dataclass(frozen=True)
class ProblemKind:
    name: str
    cls: type
    params: dict[str, Param]

    @property
    def doc(self) -> str:
        return (self.cls.__doc__ or "").strip().splitlines()[0]


def register(name: str):
    """Class decorator: register a :class:`problems.base.Problem` subclass under ``name``; the
    class declares its parameters in ``PARAMS``."""

    def deco(cls):
        if name in REGISTRY:
            raise ValueError(f"problem kind {name!r} registered twice")
        cls.kind = name
        REGISTRY[name] = ProblemKind(name=name, cls=cls, params=dict(cls.PARAMS))
        return cls

    return deco


def get(name: str) -> ProblemKind:
    if name not in REGISTRY:
        raise ParamError(f"kind: unknown problem {name!r}; allowed: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def make(name: str, runs: int = 1, seed=0, backend="numpy", dtype: str = "float32", **params):
    """Build a batch of ``runs`` problem instances of kind ``name``.

    ``seed`` and every per-run parameter may be a scalar or an array of shape (runs,); runs with
    the same seed and parameters are the same instance. ``backend`` is 'numpy', 'cupy' or a
    :class:`problems.backend.Backend`.
    """
    kind = get(name)
    return kind.cls(runs=runs, seed=seed, backend=get_backend(backend, dtype), **params)
