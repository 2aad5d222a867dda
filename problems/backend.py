"""Array backend: the one place that chooses the array module (`xp`), the dtype and the RNG.

The ground floor of the house: this module imports only NumPy (and CuPy and PyTorch, here and
nowhere else), so every package above it (``problems``, ``runners``, ``lab``) may import it without
pulling in configs, pandas or plotting (docs/design.md).

Every ``xp`` is an Array API namespace (the standard at data-apis.org): NumPy >= 2.1 itself, and
for CuPy and PyTorch the wrappers of ``array_api_compat`` (``array_api_compat.cupy`` /
``array_api_compat.torch``). Array code above this module therefore writes the standard's forms:
``xp.astype(x, dtype)``, ``xp.max(x, axis=...)``, ``x.swapaxes(-1, -2)`` (a method of all three
array types), ``xp.flip`` rather than negative strides, ``xp.linalg.svdvals``, and
``xp.asarray(x, copy=True)`` for a copy.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BACKENDS = ("numpy", "cupy", "torch")
DTYPES = ("float32", "float64")


class BackendError(ValueError):
    """A backend or dtype that cannot be used on this machine."""


@dataclass(frozen=True)
class Backend:
    """The array module and floating dtype every array of a job lives in."""

    name: str
    xp: Any
    dtype: Any
    module: Any = None  # the library itself (numpy, cupy, torch); xp is its Array API namespace
    # where the arrays live, in the form the namespace's ``device=`` arguments take: "cpu" (NumPy),
    # a torch.device, a cupy.cuda.Device; str(device) == "cpu" on the host
    device: Any = "cpu"
    # the run loop splits a batch into lanes only where each lane's largest layer holds at least
    # this many entries (B / lanes x m x n): torch dispatches every op under the GIL and spreads
    # each op over its own threads, so small per-lane ops run faster in one lane (docs/benchmarks.md)
    lane_min_elements: int = 0

    def asarray(self, a, dtype=None):
        """Move a host (NumPy) array or scalar onto this backend, cast to the float dtype (on the
        host a NumPy array of that dtype is shared, not copied)."""
        if self.name == "torch" and isinstance(a, np.ndarray) and not a.flags.writeable:
            a = np.array(a)  # torch shares host memory and cannot mark a tensor read-only
        return self.xp.asarray(a, dtype=self.dtype if dtype is None else dtype, device=self.device)

    def zeros(self, shape, dtype=None):
        """Zeros on this backend's device, in the float dtype (or ``dtype``)."""
        return self.xp.zeros(shape, dtype=self.dtype if dtype is None else dtype, device=self.device)

    def to_host(self, a) -> np.ndarray:
        """Bring an array back to NumPy (a no-op on the numpy backend)."""
        if self.name == "cupy":
            return self.module.asnumpy(a)
        if self.name == "torch" and isinstance(a, self.module.Tensor):
            return a.detach().cpu().numpy()
        return np.asarray(a)

    def sync(self) -> None:
        """Wait until queued device work is done (timing; a no-op on the host)."""
        if self.name == "cupy":
            self.module.cuda.get_current_stream().synchronize()
        elif self.name == "torch" and not self.on_host:
            self.module.cuda.synchronize()

    @property
    def on_host(self) -> bool:
        """Whether the arrays live in host memory (numpy, torch on the CPU): reading a flag costs
        no device wait there."""
        return str(self.device) == "cpu"

    @property
    def threads(self) -> int:
        """Threads the host array library uses now (:func:`host_threads`); 1 on a device. The run
        loop's default number of lanes."""
        return host_threads(self.xp) if self.on_host else 1

    @property
    def np_dtype(self) -> np.dtype:
        """The float dtype as a NumPy dtype (host buffers, itemsizes)."""
        return np.dtype(dtype_name(self.dtype))

    @property
    def info(self) -> dict:
        """The manifest's record of the backend: name and dtype, and for torch and CuPy the
        library version, the device and the TF32 switch in effect (float32 products on TF32 tensor
        cores change results at ~1e-3 relative)."""
        out = {"backend": self.name, "dtype": dtype_name(self.dtype)}
        if self.name == "torch":
            torch = self.module
            out.update(
                torch=torch.__version__,
                device=str(self.device),
                torch_threads=torch.get_num_threads(),
                torch_mkl=bool(torch.backends.mkl.is_available()),
                lane_min_elements=self.lane_min_elements,
                tf32_matmul=None if self.on_host else bool(torch.backends.cuda.matmul.allow_tf32),
            )
        elif self.name == "cupy":
            import os  # noqa: PLC0415

            tf32 = os.environ.get("CUPY_TF32", "0") == "1"
            out.update(cupy=self.module.__version__, device=str(self.device), tf32_matmul=tf32)
        return out


def dtype_name(dtype) -> str:
    """'float32' / 'float64' / ... for a NumPy, CuPy or torch dtype."""
    return str(dtype).rsplit(".", 1)[-1] if "torch" in str(dtype) else np.dtype(dtype).name


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
    import array_api_compat.cupy as xp  # noqa: PLC0415

    return cupy, xp


def _import_torch():
    try:
        import torch  # noqa: PLC0415  (the one place torch is imported for array work)
        import array_api_compat.torch as xp  # noqa: PLC0415
    except Exception as exc:
        raise BackendError(
            "backend: 'torch' is not usable here (" + type(exc).__name__ + "); install the 'torch' extra "
            "(pip install torch==2.13.0, then pip install -e .[torch]), or use backend = 'numpy'"
        ) from None
    return torch, xp


_CACHE: dict[tuple[str, str], Backend] = {}

# Measured on the Intel AVX-512 kind, torch 2.13 (W, Muon, GFLOP/s, 1 lane vs 2 lanes): tall / wide
# (4 x 256 x 64 entries per lane) 134-154 vs 91-97; small (32 x 64 x 64 = 131k) 134-138 vs 135-136;
# large (4 x 256 x 256 = 262k) 197-202 vs 223-225; the demo's Muon job (220 x 32 x 64 = 450k)
# 6.4 s vs 5.4 s.
TORCH_LANE_MIN = 1 << 17


def get_backend(name: "str | Backend" = "numpy", dtype: str = "float32") -> Backend:
    """Return the backend called ``name`` (one of BACKENDS) with float ``dtype``."""
    if isinstance(name, Backend):
        return name
    if name not in BACKENDS:
        raise BackendError(f"backend: unknown backend {name!r}; allowed: {', '.join(BACKENDS)}")
    if dtype not in DTYPES:
        raise BackendError(f"dtype: unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    key = (name, dtype)
    if key not in _CACHE:
        if name == "numpy":
            _CACHE[key] = Backend(name=name, xp=np, dtype=getattr(np, dtype), module=np)
        elif name == "cupy":
            cupy, xp = _import_cupy()
            device = cupy.cuda.Device()  # the current device
            _CACHE[key] = Backend(name=name, xp=xp, dtype=getattr(xp, dtype), module=cupy, device=device)
        else:
            torch, xp = _import_torch()
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            _CACHE[key] = Backend(
                name, xp, getattr(xp, dtype), module=torch, device=device, lane_min_elements=TORCH_LANE_MIN
            )
    return _CACHE[key]


def available_backends() -> list[str]:
    """Backends that work on this machine (for tests that parametrize over them)."""
    out = ["numpy"]
    for name in BACKENDS[1:]:
        try:
            get_backend(name)
            out.append(name)
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
    """Limit the host BLAS, and torch's intra-op pool when torch is loaded, to ``n`` threads inside
    the block (process-wide, lane threads started inside it included; concurrent and nested blocks
    share one limit, restored when the last one exits). W large on torch, 2 lanes: 265 GFLOP/s
    with the limit, 228 without (Intel AVX-512 kind)."""
    ctl = _blas_controller()
    torch = sys.modules.get("torch")  # torch's own thread pool (its BLAS and elementwise kernels), if loaded
    with _BLAS_LOCK:
        if _BLAS["users"] == 0:
            _BLAS["saved"] = [lib.num_threads for lib in ctl.lib_controllers]
            for lib in ctl.lib_controllers:
                lib.set_num_threads(n)
            if torch is not None:
                _BLAS["torch"] = torch.get_num_threads()
                torch.set_num_threads(n)
        _BLAS["users"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS["users"] -= 1
            if _BLAS["users"] == 0:
                for lib, k in zip(ctl.lib_controllers, _BLAS["saved"]):
                    lib.set_num_threads(k)
                if torch is not None and "torch" in _BLAS:
                    torch.set_num_threads(_BLAS.pop("torch"))


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
    _ragged: dict = field(default_factory=dict, init=False, repr=False)  # normal_ragged's plans

    BLOCK_BYTES = 4 << 20

    def __post_init__(self):
        self.seeds = np.asarray(self.seeds, dtype=np.int64).reshape(-1)
        self._uniq, inverse = np.unique(self.seeds, return_inverse=True)
        identity = len(self._uniq) == len(self.seeds) and np.array_equal(inverse, np.arange(len(inverse)))
        self._inverse = None if identity else self.backend.asarray(inverse, dtype=self.backend.xp.int64)

    @property
    def runs(self) -> int:
        return self.seeds.shape[0]

    def normal(self, shape: tuple[int, ...]):
        """Standard normal draws, shape (B, *shape), float dtype of the backend."""
        shape = tuple(int(s) for s in shape)
        st = self._state.get(shape)
        if st is None:
            host_dtype = np.float32 if self.backend.np_dtype == np.float32 else np.float64
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

    def normal_ragged(self, rows, shape: tuple[int, ...]):
        """Standard normal draws of shape (B, max(rows), *shape) where run b's first ``rows[b]``
        rows are what ``normal((rows[b], *shape))`` gives it, so what it would draw alone or in
        a batch where every run has its row count, and its rows past ``rows[b]`` are 0. A run's
        draws thus do not depend on its neighbours' row counts (a per-run minibatch size): one
        call of :meth:`normal` per distinct count > 0; with a single count, that call itself."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        key = (rows.tobytes(), len(shape))
        plan = self._ragged.get(key)
        if plan is None:  # once per row-count vector: the counts and their device masks
            top = int(rows.max())
            counts = [int(r) for r in np.unique(rows) if r > 0]
            uniform = counts == [top] and bool((rows == top).all())
            col = (-1, *([1] * (1 + len(shape))))
            masks = None
            if not uniform:
                masks = [self.backend.asarray((rows == r).reshape(col), dtype=self.backend.xp.bool) for r in counts]
            plan = self._ragged[key] = (top, counts, masks)
        top, counts, masks = plan
        if masks is None:
            return self.normal((top, *shape))
        xp = self.backend.xp
        out = self.backend.zeros((self.runs, top, *shape))
        for r, mask in zip(counts, masks):
            d = self.normal((r, *shape))
            if r < top:
                d = xp.concat([d, self.backend.zeros((self.runs, top - r, *shape))], axis=1)
            out = xp.where(mask, d, out)
        return out


def array_module(a):
    """The Array API namespace an array belongs to: numpy, or the array_api_compat wrapper of
    CuPy or torch for their arrays."""
    mod = type(a).__module__.split(".")[0]
    if mod == "numpy" or mod == "builtins":
        return np
    xp = _NAMESPACES.get(mod)
    if xp is None:
        import importlib  # noqa: PLC0415

        xp = _NAMESPACES[mod] = importlib.import_module("array_api_compat." + mod)
    return xp


_NAMESPACES: dict = {}


def all_finite(x, axis):
    """Bool array: every entry of ``x`` along ``axis`` is finite (exact). NumPy: isfinite then
    all. Elsewhere: max |x| is finite, since the max reduction propagates NaN and |-inf| = inf;
    on torch (CPU, Intel AVX-512 kind, 2 threads) 0.17 ms against 1.15 ms for isfinite then all at
    the demo's 441 x 32 x 64 (docs/benchmarks.md); tested against the definition in
    tests/problems/test_backend_arrays.py."""
    xp = array_module(x)
    if xp is np:
        return np.isfinite(x).all(axis=axis)
    return xp.isfinite(xp.max(xp.abs(x), axis=axis))


# Batched LAPACK routines (eigh, svd, ...) loop over the batch on one core: neither NumPy's
# OpenBLAS LAPACK nor torch's MKL path splits the batch over threads (torch eigvalsh of 64 x
# 64 x 64 float64: 5.4 ms with 2 threads or 1). batched_linalg splits it where the work, B m n
# min(m, n), is at least SPLIT_LINALG_MIN: measured on the Intel AVX-512 kind (2 cores, 2 chunks
# against the whole batch, both on one BLAS thread), float64 eigvalsh gained 1.4-2.3x from 2^23
# on (64 x 64 x 64: 1.4-1.8x), was mixed at 2^22 (64 x 64 x 16: 1.3-1.4x, 2 x 128^2: 0.1-0.8x)
# and lost below (a thread start costs ~0.1-0.2 ms); docs/benchmarks.md.
SPLIT_LINALG_MIN = 1 << 23


def host_threads(xp) -> int:
    """Threads the host library of namespace ``xp`` uses now: NumPy's BLAS, else torch's intra-op
    pool (the only other host library here); 1 inside :func:`limit_blas_threads` (1), as in the
    run loop's lanes."""
    if xp is np:
        return blas_threads()
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else 1


def library_threads(a) -> int:
    """:func:`host_threads` of host array ``a``'s library; 1 on a device."""
    return host_threads(array_module(a)) if on_host(a) else 1


def batched_linalg(fn, x, **kw):
    """``fn(x, **kw)`` for a batched linear-algebra routine ``fn`` (``xp.linalg.eigvalsh``,
    ``svd``, ...) that treats each matrix of the leading axis on its own.

    On the host every call runs with one BLAS thread: LAPACK's results depend on the BLAS
    thread count at larger sizes (eigvalsh of 256 x 256 float64 moved by ~1e-12 between 1 and 2
    threads, which made the logged grad_nuc of a run depend on the run loop's lanes), so a
    matrix gets the same bits in any batch, lane or split. With the library on k >= 2 threads
    now and at least :data:`SPLIT_LINALG_MIN` work, the batch is cut in k chunks run in k
    threads (this one and k - 1 helpers, joined before returning) and the results are joined
    along the leading axis (each output of a tuple, as a plain tuple); tested bit for bit in
    tests/problems/test_backend_arrays.py. On a device: ``fn(x, **kw)``."""
    if not on_host(x):
        return fn(x, **kw)
    B = x.shape[0]
    k = min(library_threads(x), B) if x.ndim >= 3 else 1
    if k < 2 or B * x.shape[-2] * x.shape[-1] * min(x.shape[-2:]) < SPLIT_LINALG_MIN:
        with limit_blas_threads(1):
            return fn(x, **kw)
    bounds = np.linspace(0, B, k + 1).astype(int)
    parts = [x[i:j] for i, j in zip(bounds[:-1], bounds[1:])]
    out: list = [None] * k

    def one(i):
        try:
            out[i] = fn(parts[i], **kw)
        except BaseException as exc:  # re-raised in the caller's thread
            out[i] = exc

    with limit_blas_threads(1):
        helpers = []
        try:  # every started helper is joined before the limit is released, whatever happens
            for i in range(1, k):
                helpers.append(threading.Thread(target=one, args=(i,), name="muonlab-linalg"))
                helpers[-1].start()
            one(0)
        finally:
            for t in helpers:
                if t.ident is not None:
                    t.join()
    for r in out:
        if isinstance(r, BaseException):
            raise r
    xp = array_module(x)
    if isinstance(out[0], tuple):
        return tuple(xp.concat(rs, axis=0) for rs in zip(*out))
    return xp.concat(out, axis=0)


def on_host(a) -> bool:
    """Whether array ``a`` lives in host memory (NumPy, torch on the CPU): reading it costs no
    device wait."""
    return str(device_of(a)) == "cpu"


def device_of(a):
    """The device an array lives on, in the form its namespace's ``device=`` arguments take
    ("cpu" for NumPy)."""
    import array_api_compat  # noqa: PLC0415

    return array_api_compat.device(a)
