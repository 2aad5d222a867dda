"""Declared parameters of problem generators and optimizers: default, type, range, and whether a
value may differ between the runs of one batch (``per_run``) or fixes the job's shapes or code path
(structural: one value per job). The lab's config validation and the plan read these declarations;
the generators and optimizers use :func:`Param.check` on what they are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


class ParamError(ValueError):
    """A parameter value outside what its declaration allows; the message names the parameter."""


@dataclass(frozen=True)
class Param:
    default: Any
    type: type = float
    per_run: bool = True
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple | None = None
    doc: str = ""

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kind = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}.get(
            self.type, str(self.type)
        )
        lo = "" if self.low is None else (f" > {self.low:g}" if self.low_open else f" >= {self.low:g}")
        hi = "" if self.high is None else f" <= {self.high:g}"
        both = " and".join(p for p in (lo, hi) if p)
        return kind + both

    def _check_one(self, name: str, v):
        bad = ParamError(f"{name}: got {v!r}; allowed: {self.allowed()}")
        if self.choices is not None:
            if v not in self.choices:
                raise bad
            return v
        if self.type is bool:
            if not isinstance(v, (bool, np.bool_)):
                raise bad
            return bool(v)
        if self.type is str:
            if not isinstance(v, str):
                raise bad
            return v
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise bad
        try:
            f = float(v)
        except OverflowError:  # a Python int beyond the float range
            raise bad from None
        if not np.isfinite(f):  # before int(): int(inf) and int(nan) raise, not as a ParamError
            raise bad
        if self.type is int:
            if f != int(v) or not -(2**63) <= int(v) < 2**63:  # integral, and an int64 (per-run arrays)
                raise bad
            v = int(v)
        else:
            v = f
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            raise bad
        if self.high is not None and v > self.high:
            raise bad
        return v

    def _check_numeric(self, value, n: int):
        """The (n,) array :meth:`check` returns for per-run numbers that all pass, checked as one
        array (a job's thousands of per-run values in ~0.1 ms instead of ~4 us each); None where
        any value needs the per-value check (a bool, a non-number, a failing value: that check
        then names it)."""
        if self.type not in (float, int) or self.choices is not None:
            return None
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "iuf":
                return None
        elif any(type(v) not in (int, float) for v in value):  # bool, str, nested, numpy scalars
            return None
        try:
            v = np.asarray(value, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            return None
        if v.shape[0] != n or not np.isfinite(v).all():
            return None
        if self.low is not None and ((v < self.low).any() or (self.low_open and (v == self.low).any())):
            return None
        if self.high is not None and (v > self.high).any():
            return None
        if self.type is int:
            if (v != np.trunc(v)).any() or (np.abs(v) >= 2**53).any():  # beyond: float64 is inexact
                return None
            return v.astype(np.int64)
        return v.copy() if np.shares_memory(v, value) else v  # never the caller's own array

    def check(self, name: str, value, runs: int | None = None):
        """Validate a scalar, or (for per-run parameters) a sequence/array of shape (runs,).
        Returns the scalar, or a NumPy array of shape (runs,)."""
        if isinstance(value, (list, tuple, np.ndarray)):
            arr = np.asarray(value, dtype=object).reshape(-1)
            if not self.per_run and len(set(arr.tolist())) > 1:
                raise ParamError(
                    f"{name}: fixes the job's shapes or code path, so it must be one value per batch, got several"
                )
            if runs is not None and arr.shape[0] != runs:
                raise ParamError(f"{name}: per-run values must have length runs={runs}, got {arr.shape[0]}")
            fast = self._check_numeric(value, arr.shape[0]) if self.per_run else None
            if fast is not None:
                return fast
            vals = [self._check_one(name, v) for v in arr.tolist()]
            if not self.per_run:
                return vals[0]
            dtype = {float: np.float64, int: np.int64, bool: bool}.get(self.type, object)
            return np.asarray(vals, dtype=dtype)
        return self._check_one(name, value)


def check_all(owner: str, decl: dict[str, Param], given: dict, runs: int | None = None) -> dict:
    """Fill defaults and validate every given value; unknown names are an error listing the known."""
    unknown = sorted(set(given) - set(decl))
    if unknown:
        raise ParamError(f"{unknown[0]}: unknown parameter of {owner}; allowed: {', '.join(decl)}")
    return {k: p.check(k, given.get(k, p.default), runs) for k, p in decl.items()}


def per_run(value, runs: int, dtype=np.float64) -> np.ndarray:
    """A scalar or (runs,) value as a host array of shape (runs,)."""
    return np.broadcast_to(np.asarray(value, dtype=dtype), (runs,)).copy()
