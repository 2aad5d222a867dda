"""Grid values in configs: a scalar, a list, {linspace = [a, b, n]} or {logspace = [a, b, n]}
(base-10 exponents a..b). ``expand`` turns any of them into a list of values."""
from __future__ import annotations

from typing import Any, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

Scalar = Union[bool, int, float, str]


class _Space(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _three(cls, v):
        a, b, n = v
        if int(n) != n or n < 1:
            raise ValueError("the third entry is the number of points, an integer >= 1")
        return v


class Linspace(_Space):
    linspace: tuple[float, float, float] = Field(description="[start, stop, count]")


class Logspace(_Space):
    logspace: tuple[float, float, float] = Field(description="[start exponent, stop exponent, count]")


GridValue = Union[Linspace, Logspace, list[Scalar], Scalar]


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
