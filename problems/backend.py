"""Array backend: the one place that chooses the array module (`xp`), the dtype and the RNG.

The ground floor of the house: this module imports only NumPy (and CuPy, here and nowhere else),
so every package above it (``problems``, ``runners``, ``lab``) may import it without pulling in
configs, pandas or plotting (docs/design.md).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BACKENDS = ("numpy", "cupy")
DTYPES = ("float32", "float64")


class BackendError(ValueError):
    """A backend or dtype that cannot be used on this machine."""


@dataclass(frozen=True)
class Backend:
    """The array module and floating dtype every array of a job lives in."""

    name: str
    xp: Any
    dtype: Any

    def asarray(self, a, dtype=None):
        """Move a host (NumPy) array or scalar onto this backend, cast to the float dtype."""
        return self.xp.asarray(a, dtype=self.dtype if dtype is None else dtype)

    def to_host(self, a) -> np.ndarray:
        """Bring an array back to NumPy (a no-op on the numpy backend)."""
        if self.name == "cupy":
            return self.xp.asnumpy(a)
        return np.asarray(a)

    def sync(self) -> None:
        """Wait until queued device work is done (timing; a no-op on the numpy backend)."""
        if self.name == "cupy":
            self.xp.cuda.get_current_stream().synchronize()

    @property
    def info(self) -> dict:
        return {"backend": self.name, "dtype": np.dtype(self.dtype).name}


def _import_cupy():
    try:
        import cupy  # noqa: PLC0415  (the one place CuPy is imported)
    except Exception as exc:  # ImportError, or CUDA libraries missing at import time
        raise BackendError(
            "backend: 'cupy' is not usable here (" + type(exc).__name__ + "); install the 'gpu' "
            "extra (pip install -e .[gpu]) on a machine with an NVIDIA GPU, or use backend = 'numpy'"
        ) from None
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception:
        raise BackendError("backend: 'cupy' is installed but no GPU is visible; use backend = 'numpy'") from None
    return cupy


_CACHE: dict[tuple[str, str], Backend] = {}


def get_backend(name: "str | Backend" = "numpy", dtype: str = "float32") -> Backend:
    """Return the backend called ``name`` ('numpy' or 'cupy') with float ``dtype``."""
    if isinstance(name, Backend):
        return name
    if name not in BACKENDS:
        raise BackendError(f"backend: unknown backend {name!r}; allowed: {', '.join(BACKENDS)}")
    if dtype not in DTYPES:
        raise BackendError(f"dtype: unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    key = (name, dtype)
    if key not in _CACHE:
        xp = np if name == "numpy" else _import_cupy()
        _CACHE[key] = Backend(name=name, xp=xp, dtype=getattr(xp, dtype))
    return _CACHE[key]


def available_backends() -> list[str]:
    """Backends that work on this machine (for tests that parametrize over them)."""
    out = ["numpy"]
    try:
        get_backend("cupy")
        out.append("cupy")
    except BackendError:
        pass
    return out


_BLAS = {"controller": None, "users": 0, "saved": None}
_BLAS_LOCK = threading.Lock()


def _blas_controller():
    if _BLAS["controller"] is None:
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415

        _BLAS["controller"] = ThreadpoolController().select(user_api="blas")
    return _BLAS["controller"]


def blas_threads() -> int:
    """Threads NumPy's BLAS uses now (1 if it cannot be told)."""
    libs = _blas_controller().lib_controllers
    return max([lib.num_threads for lib in libs] or [1])


def blas_kernel() -> str:
    """The kernel set NumPy's BLAS runs on this CPU: OpenBLAS's core type ('Haswell',
    'SkylakeX', 'Zen', ...), else the library's name ('mkl', ...); '' when none is seen. The
    kernel levers of runners.orth are chosen by it (docs/benchmarks.md)."""
    for lib in _blas_controller().lib_controllers:
        return str(getattr(lib, "architecture", None) or lib.internal_api)
    return ""


@contextmanager
def limit_blas_threads(n: int):
    """Limit the host BLAS to ``n`` threads inside the block (process-wide; concurrent and nested
    blocks share one limit, restored when the last one exits)."""
    ctl = _blas_controller()
    with _BLAS_LOCK:
        if _BLAS["users"] == 0:
            _BLAS["saved"] = [lib.num_threads for lib in ctl.lib_controllers]
            for lib in ctl.lib_controllers:
                lib.set_num_threads(n)
        _BLAS["users"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS["users"] -= 1
            if _BLAS["users"] == 0:
                for lib, k in zip(ctl.lib_controllers, _BLAS["saved"]):
                    lib.set_num_threads(k)


def host_rng(*key: int) -> np.random.Generator:
    """A NumPy generator keyed by integers (problem instances are always drawn on the host, in
    float64, so the same seed gives the same problem on every backend and dtype)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(k) for k in key])))


@dataclass
class RunRNG:
    """Independent random streams, one per run, that do not depend on the batch a run sits in.

    Run ``b`` draws from streams keyed by ``(seeds[b], stream, *shape)``; runs that share a seed
    share their draws (common random numbers: the runs of one cell and seed that differ only in
    their learning rate see the same minibatches). Each call of :meth:`normal` returns an array of
    shape ``(B, *shape)`` on the backend. Values come from NumPy's generator on the host, drawn in
    the backend's float dtype in blocks of calls ahead (``block`` calls; None: as many as fit
    ``BLOCK_BYTES``, at least 32) straight into a host buffer (no stacking copy), moved to the
    device once per block; each shape has its own generator, so a block of K draws equals K successive draws
    and blocking does not change any value.
    """

    seeds: np.ndarray
    backend: Backend
    stream: int = 1
    block: int | None = None
    _uniq: np.ndarray = field(default=None, init=False, repr=False)
    _inverse: object = field(default=None, init=False, repr=False)
    _state: dict = field(default_factory=dict, init=False, repr=False)

    BLOCK_BYTES = 4 << 20

    def __post_init__(self):
        self.seeds = np.asarray(self.seeds, dtype=np.int64).reshape(-1)
        self._uniq, inverse = np.unique(self.seeds, return_inverse=True)
        identity = len(self._uniq) == len(self.seeds) and np.array_equal(inverse, np.arange(len(inverse)))
        self._inverse = None if identity else self.backend.xp.asarray(inverse)

    @property
    def runs(self) -> int:
        return self.seeds.shape[0]

    def normal(self, shape: tuple[int, ...]):
        """Standard normal draws, shape (B, *shape), float dtype of the backend."""
        shape = tuple(int(s) for s in shape)
        st = self._state.get(shape)
        if st is None:
            host_dtype = np.float32 if np.dtype(self.backend.dtype) == np.float32 else np.float64
            per_call = len(self._uniq) * int(np.prod(shape)) * np.dtype(host_dtype).itemsize
            block = self.block or max(32, self.BLOCK_BYTES // max(per_call, 1))
            gens = [host_rng(s, self.stream, *shape) for s in self._uniq]
            st = self._state[shape] = {"gens": gens, "dtype": host_dtype, "block": block, "buf": None, "pos": block}
        if st["pos"] >= st["block"]:
            # a fresh buffer per block: draws handed out earlier (views) stay valid
            host = np.empty((len(self._uniq), st["block"], *shape), st["dtype"])
            for g, row in zip(st["gens"], host):
                g.standard_normal(out=row, dtype=host.dtype)
            st["buf"], st["pos"] = self.backend.asarray(host) if self.backend.name != "numpy" else host, 0
        out = st["buf"][:, st["pos"]]
        st["pos"] += 1
        return out if self._inverse is None else out[self._inverse]


def array_module(a):
    """The array module an array belongs to (numpy, or cupy for a CuPy array)."""
    mod = type(a).__module__.split(".")[0]
    if mod == "cupy":
        import sys

        return sys.modules["cupy"]
    return np
