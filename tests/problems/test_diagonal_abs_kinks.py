"""diagonal_abs at exact kinks: the adversarial subgradient (+1 where a residual is exactly 0)
against sign(0) = 0, and a sign-descent run that returns to a kink every other step: under the
adversarial oracle it never moves the pair sum (stays at the floor), under sign(0) = 0 it escapes."""

import numpy as np
import pytest

import problems
import runners
from problems.backend import get_backend

BK = get_backend("numpy", "float64")


@pytest.mark.parametrize("kink,expected", [("adversarial", 1.0), ("zero", 0.0)])
def test_subgradient_at_an_exact_kink(kink, expected):
    P = problems.make("diagonal_abs", runs=2, seed=[0, 1], m=3, n=4, offdiag=0.5, kink=kink, backend=BK)
    x = P.optimum()[0][0].copy()  # diag = d* = c exactly: every residual is exactly 0
    x[0, 1, 1] += 0.25  # one entry off its kink: sign +1 there, whatever the oracle
    g = P.grad((x,))[0]
    want = np.full((2, 3), expected)
    want[0, 1] = 1.0
    np.testing.assert_array_equal(np.diagonal(g, axis1=1, axis2=2), want)
    off = ~np.eye(3, 4, dtype=bool)
    assert np.all(g[:, off] == 0)  # 0 in the subdifferential of |X_ij| at 0: diagonal X stays diagonal


def _run_from_the_kink(kink, opt, **hp):
    """One coupled pair, started exactly on the kink d1 - d2 = c_0 (d2 = 0) with a power-of-two lr,
    so that sign steps (+-lr) bring d1 - d2 back to c_0 exactly every other step."""
    P = problems.make("diagonal_abs", runs=1, seed=3, m=2, n=2, coupled=True, eps=0.05, kink=kink, backend=BK)
    c = P.c[0]
    x0 = np.zeros((1, 2, 2))
    x0[0, 0, 0] = c[0]
    P.init = lambda rng: (x0.copy(),)
    res = runners.run(P, runners.make(opt, lr=2.0**-10, **hp), steps=3000, log_points=10, lanes=1)
    floor = abs(P.a[0, 1, 0] * c[0] - c[1])  # |eps (d1 + d2) - c_1| at the starting sum d1 + d2 = c_0
    d = np.diagonal(res.params[0][0])
    return res, floor, d, c


@pytest.mark.parametrize("opt,hp", [("signsgd", {}), ("muon", dict(orth="svd", beta=0.0, nesterov=False))])
def test_a_run_through_exact_kinks_stays_at_the_floor_under_the_adversarial_oracle(opt, hp):
    res, floor, d, c = _run_from_the_kink("adversarial", opt, **hp)
    assert floor > 1e-3
    assert d[0] + d[1] == c[0]  # the pair sum never moved
    assert np.all(res.curves["gap"][1:, 0] >= floor)
    leaky, floor0, _, _ = _run_from_the_kink("zero", opt, **hp)
    assert leaky.final["gap"][0] < 0.5 * floor0  # sign(0) = 0 lets the same run escape
