"""Batched synthetic problems with known ground truth. ``problems.make(name, ...)``; kinds in
``problems.REGISTRY``. Pure array code on the backend's ``xp``: never imports the lab's
orchestration layer, pandas or matplotlib."""

from .base import Problem
from .params import Param, ParamError
from .registry import REGISTRY, get, make, register

# Importing a generator module registers it.
from . import assoc_memory, diagonal_abs, linear_net, pl_sine, power_law_lsq, quadratic, sample_lsq, two_sided_lsq  # noqa: E402,F401

__all__ = ["Problem", "Param", "ParamError", "REGISTRY", "get", "make", "register"]
