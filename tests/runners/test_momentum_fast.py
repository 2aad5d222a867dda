"""The momentum lines and weight decay of runners/optimizers/base.py, written for speed (fewer
temporaries), give bit for bit the values of the plain formulas written out here."""

from __future__ import annotations

import numpy as np
import pytest

from runners.optimizers import base


def _plain(ms, gs, b, kind, nesterov):
    if kind == "ema":
        m = tuple(b * mi + (1 - b) * g for mi, g in zip(ms, gs))
        u = tuple(b * mi + (1 - b) * g for mi, g in zip(m, gs)) if nesterov else m
    else:
        m = tuple(b * mi + g for mi, g in zip(ms, gs))
        u = tuple(g + b * mi for mi, g in zip(m, gs)) if nesterov else m
    return m, u


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["ema", "sum"])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("per_run", [False, True])
def test_momentum_bit_identical_to_the_formulas(dtype, kind, nesterov, per_run):
    rng = np.random.default_rng(3)
    B = 5
    ms = tuple(rng.standard_normal((B, m, n)).astype(dtype) for m, n in ((4, 6), (3, 3)))
    gs = tuple((rng.standard_normal(x.shape) * 10.0 ** rng.integers(-8, 8)).astype(dtype) for x in ms)
    b = rng.uniform(0, 0.999, (B, 1, 1)).astype(dtype) if per_run else 0.95
    ms_copy = tuple(x.copy() for x in ms)
    m, u = base.momentum(ms, gs, b, kind, nesterov)
    m0, u0 = _plain(ms, gs, b, kind, nesterov)
    for got, want in zip(m + u, m0 + u0):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    for x, x0 in zip(ms, ms_copy):  # the old momenta are not modified
        np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("wd", [0.0, 0.1, "zeros", "mixed"])
def test_decay_bit_identical_to_the_formula(wd):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    x[0, 0, 0], x[0, 0, 1], x[1, 0, 0] = -0.0, np.nan, np.inf
    lr = rng.uniform(0.01, 1, (3, 1, 1)).astype(np.float32)
    w = {"zeros": np.zeros((3, 1, 1), np.float32), "mixed": np.array([0, 0.5, 0], np.float32)[:, None, None]}.get(
        wd, wd
    )
    got, want = base.decay(x, lr, w), x * (1 - lr * w)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
