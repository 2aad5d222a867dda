"""The batched ``Problem`` contract (docs/design.md): every array has a leading axis of size B
(independent runs); parameters are tuples of layers, each (B, m_i, n_i)."""
from __future__ import annotations

import zlib

import numpy as np

from lab.backend import Backend

from .params import ParamError, check_all, per_run


class Problem:
    """Base class. Subclasses declare ``PARAMS`` and implement the oracle methods."""

    kind = "base"
    PARAMS: dict = {}

    def __init__(self, runs: int, seed, backend: Backend, **params):
        if int(runs) < 1:
            raise ParamError(f"runs: got {runs!r}; allowed: an integer >= 1")
        self.runs = int(runs)
        self.backend = backend
        self.xp = backend.xp
        self.dtype = backend.dtype
        self.seeds = per_run(seed, self.runs, np.int64)
        self.params = check_all(f"problem {self.kind!r}", self.PARAMS, params, self.runs)

    # --- helpers for subclasses -------------------------------------------------------------
    def p(self, name: str, dtype=np.float64) -> np.ndarray:
        """Parameter ``name`` as a host array of shape (B,)."""
        return per_run(self.params[name], self.runs, dtype)

    @property
    def instance_key(self) -> int:
        """Integer mixed into the seed of instance generation, distinct per problem kind."""
        return zlib.crc32(self.kind.encode())

    # --- the contract ---------------------------------------------------------------------
    layer_shapes: tuple = ()

    def init(self, rng) -> tuple:
        """Initial parameters (a tuple of (B, m, n) arrays); default: zeros."""
        return tuple(self.xp.zeros((self.runs, m, n), dtype=self.dtype) for m, n in self.layer_shapes)

    def loss(self, params) -> "object":
        raise NotImplementedError

    def gap(self, params):
        """f(params) - f*, shape (B,). Subclasses override it to avoid the cancellation of
        computing f and f* separately when the gap is far below f*."""
        return self.loss(params) - self.optimum()[1]

    def grad(self, params) -> tuple:
        raise NotImplementedError

    def sample(self, rng):
        """A draw xi of the stochastic oracle (None for an exact oracle)."""
        return None

    def stoch_grad(self, params, xi) -> tuple:
        """Gradient at ``params`` under draw ``xi``; the same xi may be used at two points."""
        return self.grad(params) if xi is None else NotImplemented

    def extra_metrics(self, params) -> dict:
        """Problem-specific metrics logged with the standard ones ({name: (B,) array}); each
        becomes a column of curves.csv. Default: none."""
        return {}

    def optimum(self) -> tuple:
        """(X* as a tuple of layers, f* of shape (B,))."""
        raise NotImplementedError

    def constants(self) -> dict[str, np.ndarray]:
        """Per-run ground truth as host arrays of shape (B,)."""
        raise NotImplementedError

    @classmethod
    def run_bytes(cls, params: dict, itemsize: int) -> int:
        """Rough working-set bytes of one run (the plan sizes chunks with it)."""
        m, n = params.get("m", 1), params.get("n", 1)
        return 16 * m * n * itemsize
