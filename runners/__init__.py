"""Vectorized optimizers over a leading batch axis of independent runs, and the run loop.
``runners.make(name, **hp)``; names in ``runners.REGISTRY``; ``runners.run(problem, opt, ...)``.
Pure array code on the backend's ``xp``: never imports the lab's orchestration layer, pandas or
matplotlib."""

from . import optimizers  # noqa: F401  (registers the optimizers)
from .accumulate import ACCUMULABLE
from .loop import METRICS, RunResult, log_steps, run
from .orth import ORTH
from .registry import REGISTRY, Optimizer, get, hparams, make, register

__all__ = [
    "ACCUMULABLE",
    "METRICS",
    "ORTH",
    "REGISTRY",
    "Optimizer",
    "RunResult",
    "get",
    "hparams",
    "log_steps",
    "make",
    "register",
    "run",
]
