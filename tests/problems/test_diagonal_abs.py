"""diagonal_abs: the loss against its definition written here, subgradient = finite differences
away from kinks, convexity, Lipschitz bound, optimum, determinism, parameter errors."""

from __future__ import annotations

import numpy as np
import pytest

import problems
from problems import ParamError


def make(**kw):
    base = dict(
        runs=3,
        seed=[0, 1, 2],
        m=5,
        n=7,
        coupled=True,
        eps=[0.05, 0.5, 1.0],
        offdiag=[0.0, 0.3, 1.0],
        dist=[1.0, 2.0, 0.5],
        dtype="float64",
    )
    return problems.make("diagonal_abs", **{**base, **kw})


def f_ref(x, dstar, eps, lam, coupled):
    """sum_i |(A d)_i - (A d*)_i| + lam sum_{i != j} |X_ij|, one run, from the definition."""
    k = min(x.shape)
    d = np.array([x[i, i] for i in range(k)])
    total, i = 0.0, 0
    while i < k:
        if coupled and i + 1 < k:
            total += abs((d[i] - d[i + 1]) - (dstar[i] - dstar[i + 1]))
            total += abs(eps * (d[i] + d[i + 1]) - eps * (dstar[i] + dstar[i + 1]))
            i += 2
        else:
            total += abs(d[i] - dstar[i])
            i += 1
    off = sum(abs(x[a, b]) for a in range(x.shape[0]) for b in range(x.shape[1]) if a != b)
    return total + lam * off


@pytest.mark.parametrize("coupled", [False, True])
def test_loss_gradient_and_optimum(coupled):
    P = make(coupled=coupled)
    (xs,), fstar = P.optimum()
    np.testing.assert_array_equal(fstar, 0)
    np.testing.assert_allclose(P.loss((xs,)), 0, atol=1e-14)
    dstar = np.stack([np.diag(xs[r])[:5] for r in range(3)])
    np.testing.assert_allclose(np.linalg.norm(xs, axis=(1, 2)), [1.0, 2.0, 0.5])
    assert np.all(xs * (1 - np.eye(5, 7)) == 0)
    rng = np.random.default_rng(0)
    eps, lam = [0.05, 0.5, 1.0], [0.0, 0.3, 1.0]
    for _ in range(5):
        x = rng.standard_normal((3, 5, 7))
        f = P.loss((x,))
        for r in range(3):
            assert f[r] == pytest.approx(f_ref(x[r], dstar[r], eps[r], lam[r], coupled), rel=1e-12)
        np.testing.assert_array_equal(P.gap((x,)), f)
        g = P.grad((x,))[0]
        h = 1e-7  # piecewise linear: central differences are exact away from kinks
        fd = np.zeros_like(x)
        for i in range(5):
            for j in range(7):
                e = np.zeros_like(x)
                e[:, i, j] = h
                fd[:, i, j] = (P.loss((x + e,)) - P.loss((x - e,))) / (2 * h)
        np.testing.assert_allclose(g, fd, atol=1e-6)


def test_convex_lipschitz_and_diagonal_subgradient():
    P = make()
    lip = P.constants()["lipschitz_fro"]
    rng = np.random.default_rng(1)
    for _ in range(20):
        x, y = rng.standard_normal((2, 3, 5, 7))
        fx, fy, fm = P.loss((x,)), P.loss((y,)), P.loss(((x + y) / 2,))
        assert np.all(fm <= (fx + fy) / 2 + 1e-12)
        assert np.all(np.abs(fx - fy) <= lip * np.linalg.norm(x - y, axis=(1, 2)) + 1e-12)
        assert np.all(np.linalg.norm(P.grad((x,))[0], axis=(1, 2)) <= lip + 1e-12)
    d = np.zeros((3, 5, 7))
    d[:, np.arange(5), np.arange(5)] = rng.standard_normal((3, 5))
    assert np.all(P.grad((d,))[0] * (1 - np.eye(5, 7)) == 0)  # sign(0) = 0 off the diagonal


def test_init_deterministic_and_float32():
    from problems.backend import RunRNG, get_backend

    a, b = make(), make()
    np.testing.assert_array_equal(a.optimum()[0][0], b.optimum()[0][0])
    assert not np.allclose(make(seed=[3, 4, 5]).optimum()[0][0], a.optimum()[0][0])
    np.testing.assert_array_equal(a.init(None)[0], 0)
    rng = RunRNG(np.array([0, 1, 2]), get_backend("numpy", "float64"), stream=2)
    assert np.abs(make(init_scale=1.0).init(rng)[0]).max() > 0
    P32 = make(dtype="float32")
    assert P32.grad(P32.init(None))[0].dtype == np.float32


@pytest.mark.parametrize("field,value", [("eps", 0.0), ("eps", 1.5), ("offdiag", -1.0), ("dist", 0.0)])
def test_bad_parameters_name_the_field(field, value):
    with pytest.raises(ParamError, match=rf"^{field}:"):
        make(**{field: value})
