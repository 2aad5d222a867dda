"""The backend's own array helpers against their definitions, on every backend."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

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
