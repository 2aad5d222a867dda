"""Named registries, and the registry of problem kinds: ``problems.make(name, runs=..., seed=..., **params)``.

:class:`Registry` is the one registry type of the house below analysis (problem kinds, optimizers,
orthogonalization kernels and their coefficient sets, Hessian builders, norms, executors):
name -> entry, a ``register(name)`` decorator and a plain ``add(name, entry)``, a duplicate name
raises, and ``get`` of an unknown name raises :class:`UnknownName` with the house message
``<field>: got X; allowed: a, b, c`` (a :class:`problems.params.ParamError`, so the lab's config
layer prefixes the field path: ``problem.kind: got ...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from .backend import get_backend
from .params import Param, ParamError


class UnknownName(ParamError):
    """A name no entry of a registry carries; the message names the field and the allowed names."""


class DuplicateName(ValueError):
    """A second entry under a name a registry already holds (a programming error, not bad input)."""


class Registry:
    """name -> entry. ``field`` starts the error of an unknown name (the parameter that names an
    entry: ``kind``, ``name``, ``orth``, ...); ``what`` says what an entry is, for the duplicate
    error. Iteration and :meth:`names` give the names in registration order; ``name in r``,
    ``len(r)``, ``r[name]`` (= :meth:`get`)."""

    def __init__(self, field: str, what: str):
        self.field, self.what = field, what
        self._entries: dict[str, Any] = {}

    def add(self, name: str, entry):
        """Register ``entry`` under ``name`` and return it; a name taken already raises."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.what}: a name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise DuplicateName(f"{self.what} {name!r} registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str):
        """Decorator: ``add(name, obj)`` and return ``obj`` unchanged."""

        def deco(obj):
            self.add(name, obj)
            return obj

        return deco

    def allowed(self) -> str:
        return ", ".join(sorted(self._entries))

    def get(self, name):
        try:
            return self._entries[name]
        except (KeyError, TypeError):  # TypeError: an unhashable value given as a name
            raise UnknownName(f"{self.field}: got {name!r}; allowed: {self.allowed()}") from None

    __getitem__ = get

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self):
        return self._entries.items()

    def values(self):
        return self._entries.values()

    def __contains__(self, name) -> bool:
        try:
            return name in self._entries
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.field!r}: {', '.join(self._entries)})"


# --- problem kinds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProblemKind:
    name: str
    cls: type
    params: dict[str, Param]

    @property
    def doc(self) -> str:
        return (self.cls.__doc__ or "").strip().splitlines()[0]


REGISTRY = Registry("kind", "problem kind")


def register(name: str):
    """Class decorator: register a :class:`problems.base.Problem` subclass under ``name``; the
    class declares its parameters in ``PARAMS`` (and small valid parameter sets in ``EXAMPLES``,
    which the generic contract test runs)."""

    def deco(cls):
        REGISTRY.add(name, ProblemKind(name=name, cls=cls, params=dict(cls.PARAMS)))
        cls.kind = name
        return cls

    return deco


def get(name: str) -> ProblemKind:
    return REGISTRY.get(name)


def make(name: str, runs: int = 1, seed=0, backend="numpy", dtype: str = "float32", **params):
    """Build a batch of ``runs`` problem instances of kind ``name``.

    ``seed`` and every per-run parameter may be a scalar or an array of shape (runs,); runs with
    the same seed and parameters are the same instance. ``backend`` is 'numpy', 'cupy' or a
    :class:`problems.backend.Backend`.
    """
    kind = get(name)
    return kind.cls(runs=runs, seed=seed, backend=get_backend(backend, dtype), **params)
