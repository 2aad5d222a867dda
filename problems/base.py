"""The batched ``Problem`` contract (docs/design.md): every array has a leading axis of size B
(independent runs); parameters are tuples of layers, each (B, m_i, n_i).

Besides the contract, the base class carries what every generator shares: the oracle-noise layer
(:mod:`problems.noise`), host-side instance generation keyed by seed, and finiteness checks of
generated data."""

from __future__ import annotations

import zlib

import numpy as np

from .backend import Backend, host_rng

from .linalg import check_finite
from .noise import AdditiveNoise, check_noise_combination
from .params import ParamError, check_all, per_run


class Problem:
    """Base class. Subclasses declare ``PARAMS`` and implement the oracle methods.

    Stochastic oracle: a subclass with a data model sets ``batched`` (after construction) and
    implements ``sample_batch(rng)`` / ``batch_grad(params, batch)``; every subclass that
    declares the noise parameters (:func:`problems.noise.noise_params`) calls
    :meth:`setup_noise` once its ``layer_shapes`` are known. ``sample``/``stoch_grad`` then
    compose the two: xi = {"batch": ..., "add": ...}, or None for the exact oracle."""

    kind = "base"
    PARAMS: dict = {}
    # Small valid parameter sets (kwargs of problems.make) covering the kind's structural
    # variants; every registered kind declares them and the generic contract test
    # (tests/problems/test_contract.py) runs each one.
    EXAMPLES: tuple = ()
    # True where the kind documents that E[stoch_grad] != grad (the contract test then does not
    # test unbiasedness); no kind here has a biased oracle.
    BIASED_ORACLE = False
    batched = False  # True: stoch_grad uses a minibatch drawn by sample_batch

    def __init__(self, runs: int, seed, backend: Backend, **params):
        if int(runs) < 1:
            raise ParamError(f"runs: got {runs!r}; allowed: an integer >= 1")
        self.runs = int(runs)
        self.backend = backend
        self.xp = backend.xp
        self.dtype = backend.dtype
        self.seeds = per_run(seed, self.runs, np.int64)
        self.params = check_all(f"problem {self.kind!r}", self.PARAMS, params, self.runs)
        self._noise = None

    # --- helpers for subclasses -------------------------------------------------------------
    def p(self, name: str, dtype=np.float64) -> np.ndarray:
        """Parameter ``name`` as a host array of shape (B,)."""
        return per_run(self.params[name], self.runs, dtype)

    def index(self, idx):
        """A host integer index array moved onto the backend (for indexing backend arrays)."""
        return self.backend.asarray(np.asarray(idx, np.int64), dtype=self.xp.int64)

    @property
    def instance_key(self) -> int:
        """Integer mixed into the seed of instance generation, distinct per problem kind."""
        return zlib.crc32(self.kind.encode())

    def host_rng(self, seed, component: int) -> np.random.Generator:
        """The host generator of one random component (basis, target, ...) of the instance with
        ``seed``: independent streams per component, so adding a component moves no other."""
        return host_rng(int(seed), self.instance_key, int(component))

    def groups(self, *names):
        """Runs that share their seed and the values of the per-run parameters ``names``: yields
        (seed, {name: value}, index array). Loops over these are construction-time only."""
        cols = [self.seeds.astype(np.float64)] + [self.p(k) for k in names]
        keys = np.stack(cols, axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        for u, row in enumerate(uniq):
            yield int(row[0]), dict(zip(names, row[1:].tolist())), np.nonzero(inv == u)[0]

    def finite(self, name: str, arr) -> np.ndarray:
        """Check generated host data for NaN/inf (also after the cast to the backend dtype);
        the error names the parameter ``name`` that produced it."""
        check_finite(name, arr, self.backend.np_dtype)
        return arr

    def unused(self, reason: str, *names) -> None:
        """Error if any parameter in ``names`` differs from its default (it has no effect here)."""
        for k in names:
            v, d = self.params[k], self.PARAMS[k].default
            if np.any(np.asarray(v) != d):
                got = v if np.ndim(v) == 0 else np.asarray(v)[np.asarray(v) != d][0]
                raise ParamError(f"{k}: got {got!r}, but {reason} does not use it; leave it at its default {d!r}")

    def setup_noise(self, batch_size: np.ndarray | None = None) -> None:
        """Validate the noise parameters and build the additive-noise layer."""
        kind, sigma = self.params["noise"], self.p("sigma")
        check_noise_combination(kind, sigma, batch_size)
        self._noise = AdditiveNoise(kind, sigma, self.params["df"], self.layer_shapes, self.backend)

    @property
    def noise_kind(self) -> str:
        return self.params.get("noise", "none")

    # --- the contract ---------------------------------------------------------------------
    layer_shapes: tuple = ()

    def init(self, rng) -> tuple:
        """Initial parameters (a tuple of (B, m, n) arrays); default: zeros."""
        return tuple(self.backend.zeros((self.runs, m, n)) for m, n in self.layer_shapes)

    def loss(self, params) -> "object":
        raise NotImplementedError

    def gap(self, params):
        """f(params) - f*, shape (B,). Subclasses override it to avoid the cancellation of
        computing f and f* separately when the gap is far below f*."""
        return self.loss(params) - self.optimum()[1]

    def grad(self, params) -> tuple:
        raise NotImplementedError

    def sample_batch(self, rng):
        """The data part of a draw (problems with a data model)."""
        return None

    def batch_grad(self, params, batch) -> tuple:
        """Gradient of the minibatch ``batch`` at ``params`` (problems with a data model)."""
        raise NotImplementedError

    def sample(self, rng):
        """A draw xi of the stochastic oracle (None for an exact oracle)."""
        batch = self.sample_batch(rng) if self.batched else None
        add = self._noise.sample(rng) if self._noise is not None else None
        if batch is None and add is None:
            return None
        return {"batch": batch, "add": add}

    def stoch_grad(self, params, xi) -> tuple:
        """Gradient at ``params`` under draw ``xi``; the same xi may be used at two points
        (it holds the minibatch and the realized additive noise)."""
        if xi is None:
            return self.grad(params)
        g = self.grad(params) if xi["batch"] is None else self.batch_grad(params, xi["batch"])
        if xi["add"] is not None:
            g = tuple(gi + zi for gi, zi in zip(g, xi["add"]))
        return g

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

    def spectra(self) -> dict[str, np.ndarray]:
        """Per-run spectra the theory is stated in ({name: (B, k) host array}), e.g. the data
        covariance eigenvalues of the least-squares problems. Default: none."""
        return {}

    @classmethod
    def run_bytes(cls, params: dict, itemsize: int) -> int:
        """Rough working-set bytes of one run (the plan sizes chunks with it)."""
        m, n = params.get("m", 1), params.get("n", 1)
        return 16 * m * n * itemsize
