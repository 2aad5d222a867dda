"""Grid values in configs: a scalar, a list, {linspace = [a, b, n]} or {logspace = [a, b, n]}
(base-10 exponents a..b). :data:`GridValue` validates one (with a one-line message saying what
is allowed); ``expand`` turns any of them into a list of values."""

from __future__ import annotations

import math
from typing import Annotated, Any, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator

Scalar = Union[bool, int, float, str]
MAX_POINTS = 10_000  # points on one axis of a grid
ALLOWED = (
    "a value, a list of values, {linspace = [start, stop, count]} or "
    "{logspace = [start exponent, stop exponent, count]}"
)


class _Space(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Linspace(_Space):
    linspace: tuple[float, float, float] = Field(description="[start, stop, count]")


class Logspace(_Space):
    logspace: tuple[float, float, float] = Field(description="[start exponent, stop exponent, count]")


SPACES = {"linspace": Linspace, "logspace": Logspace}


def _is_scalar(v) -> bool:
    return isinstance(v, (bool, int, float, str))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_grid_value(v: Any):
    """Validate a grid entry; returns a scalar, a list of scalars, or a Linspace/Logspace."""
    if _is_scalar(v):
        return v
    if isinstance(v, list):
        bad = next((x for x in v if not _is_scalar(x)), None)
        if bad is not None:
            raise ValueError(f"got {v!r} (an element that is not a single value); allowed: {ALLOWED}")
        if len(v) > MAX_POINTS:
            raise ValueError(f"got {len(v)} values; allowed: at most {MAX_POINTS} points on one axis")
        return list(v)
    if isinstance(v, dict):
        if len(v) != 1 or next(iter(v)) not in SPACES:
            raise ValueError(f"got a table with keys {', '.join(map(repr, v)) or '(none)'}; allowed: {ALLOWED}")
        ((kind, spec),) = v.items()
        what = "[start, stop, count]" if kind == "linspace" else "[start exponent, stop exponent, count]"
        if not isinstance(spec, (list, tuple)) or len(spec) != 3 or not all(_is_number(x) for x in spec):
            raise ValueError(f"{kind} takes three numbers {what}; got {spec!r}")
        a, b, n = spec
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"{kind} takes finite start and stop; got {spec!r}")
        if not math.isfinite(n) or int(n) != n or n < 1:
            raise ValueError(f"{kind} count (third entry) must be an integer >= 1; got {n!r}")
        if n > MAX_POINTS:
            raise ValueError(f"{kind} count is {n:g}; allowed: at most {MAX_POINTS} points on one axis")
        return SPACES[kind](**{kind: (float(a), float(b), float(n))})
    if isinstance(v, (Linspace, Logspace)):
        return v
    raise ValueError(f"got {v!r}; allowed: {ALLOWED}")


def _serialize(v):
    return v.model_dump() if isinstance(v, BaseModel) else v


# one grid entry: a scalar, a list of scalars, a Linspace or a Logspace (validated by
# parse_grid_value, whose message says what is allowed, instead of pydantic's union matching)
GridValue = Annotated[Any, PlainValidator(parse_grid_value), PlainSerializer(_serialize)]


def expand(v: Any) -> list:
    """The list of values a grid entry stands for (rounded to 12 significant digits, so that
    linspace(0, 2, 5) gives 0.5, not 0.49999999999999994)."""
    if isinstance(v, Linspace):
        a, b, n = v.linspace
        return [float(f"{x:.12g}") for x in np.linspace(a, b, int(n))]
    if isinstance(v, Logspace):
        a, b, n = v.logspace
        return [float(f"{x:.12g}") for x in np.logspace(a, b, int(n))]
    if isinstance(v, list):
        return list(v)
    return [v]
