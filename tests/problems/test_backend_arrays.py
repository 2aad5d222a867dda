"""The backend's own array helpers against their definitions, on every backend."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import problems.backend as backend_mod
from problems.backend import all_finite, array_module, get_backend


@pytest.mark.parametrize("seed", range(5))
def test_all_finite_is_isfinite_then_all(backend, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((40, 3, 5)) * 1e30
    for v in (np.nan, np.inf, -np.inf):
        idx = rng.integers(0, x.size, 7)
        x.reshape(-1)[idx] = v
    bk = get_backend(backend, "float64")
    got = bk.to_host(all_finite(bk.asarray(x), (1, 2)))
    np.testing.assert_array_equal(got, np.isfinite(x).all(axis=(1, 2)))
    assert 0 < got.sum() < len(got)  # both kinds of rows occur
    big = np.full((2, 2, 2), np.finfo(np.float64).max)  # finite, with |x| at the top of the range
    assert bk.to_host(all_finite(bk.asarray(big), (1, 2))).all()


def test_arrays_come_back_to_numpy_unchanged(backend):
    bk = get_backend(backend, "float64")
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    ro = np.broadcast_to(x[:1], x.shape)  # read-only host input: no warning, no shared writes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = bk.asarray(ro)
    assert array_module(d) is bk.xp
    back = bk.to_host(d)
    assert isinstance(back, np.ndarray) and back.dtype == np.float64
    np.testing.assert_array_equal(back, ro)
    assert bk.np_dtype == np.float64 and bk.threads >= 1


def _routines(xp):
    return {
        "eigvalsh": (xp.linalg.eigvalsh, True),
        "eigh": (xp.linalg.eigh, True),
        "svd": (lambda a: xp.linalg.svd(a, full_matrices=False), False),
        "svdvals": (xp.linalg.svdvals, False),
        "qr": (xp.linalg.qr, False),
    }


def _host(r):
    return [np.asarray(a) for a in (r if isinstance(r, tuple) else (r,))]


@pytest.mark.parametrize("shape", [(2, 256, 256), (6, 200, 200), (64, 64, 64), (5, 150, 90), (3, 7, 4)])
def test_batched_linalg_gives_a_matrix_the_same_bits_in_any_batch(backend, shape, monkeypatch):
    """Each matrix's result equals, bit for bit, its own call on a batch of one, whether the
    batch is split over threads (forced, and by the default size rule) or runs inside a
    one-thread limit as in a run loop lane. Before every call took one BLAS thread, float64
    eigvalsh at 256 x 256 differed by ~1e-12 between 1 and 2 threads (the (2, 256, 256) case
    fails when the one-thread limit is taken out)."""
    bk = get_backend(backend, "float64")
    if not bk.on_host:
        pytest.skip("the split is a host path; on a device batched_linalg is the routine itself")
    g = np.random.default_rng(1).standard_normal(shape)
    for name, (fn, symmetric) in _routines(bk.xp).items():
        x = bk.asarray(g @ g.swapaxes(-1, -2) if symmetric else g)
        alone = [_host(backend_mod.batched_linalg(fn, x[i : i + 1])) for i in range(shape[0])]
        want = [np.concatenate([a[j] for a in alone]) for j in range(len(alone[0]))]
        runs = {"default": _host(backend_mod.batched_linalg(fn, x))}
        with backend_mod.limit_blas_threads(1):
            runs["in a lane"] = _host(backend_mod.batched_linalg(fn, x))
        monkeypatch.setattr(backend_mod, "SPLIT_LINALG_MIN", 0)
        monkeypatch.setattr(backend_mod, "library_threads", lambda a: 2)  # a split on any machine
        runs["split"] = _host(backend_mod.batched_linalg(fn, x))
        monkeypatch.undo()
        for label, got in runs.items():
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b, err_msg=f"{name}, {label}")


def test_batched_linalg_raises_a_helper_thread_s_error_in_the_caller(monkeypatch):
    monkeypatch.setattr(backend_mod, "SPLIT_LINALG_MIN", 0)
    monkeypatch.setattr(backend_mod, "library_threads", lambda a: 2)
    x = np.ones((4, 3, 3))

    def fails_on_the_second_chunk(a):
        if a is not None and a.shape[0] and a[0, 0, 0] == 2.0:
            raise np.linalg.LinAlgError("second chunk")
        return np.linalg.eigvalsh(a)

    x[2:] = 2.0
    with pytest.raises(np.linalg.LinAlgError, match="second chunk"):
        backend_mod.batched_linalg(fails_on_the_second_chunk, x)
    assert threading.active_count() == 1 or all(t.name != "muonlab-linalg" for t in threading.enumerate())
