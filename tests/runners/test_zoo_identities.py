"""Identities between methods that the update rules imply (PAPERS.md), oracle-call counts, the
error-feedback invariant, the LMO table, tiny and huge gradients, and parameter errors."""

from __future__ import annotations

import numpy as np
import pytest

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from runner_fixtures import assert_direction_survives_scale, noisy_lsq  # noqa: E402

import problems
import runners
from problems.backend import get_backend
from problems import ParamError
from runners import orth
from runners.optimizers import base

BK64 = get_backend("numpy", "float64")


def _final(name, prob, steps, seed=0, **hp):
    return runners.run(prob, runners.make(name, **hp), steps=steps, seed=seed, log_points=3).params


# --- Muon on diagonal objectives is signed momentum (arXiv 2605.08980) -----------------------


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("shape", [(6, 6), (5, 7)])
def test_muon_svd_on_a_diagonal_objective_is_signum(nesterov, shape):
    m, n = shape
    prob = problems.make(
        "diagonal_abs",
        runs=3,
        seed=[0, 1, 2],
        m=m,
        n=n,
        coupled=True,
        eps=[0.05, 0.3, 1.0],
        offdiag=[0.0, 0.5, 1.0],
        dtype="float64",
    )
    for steps in (1, 7, 40):
        mu = _final("muon", prob, steps, lr=0.03, beta=0.9, orth="svd", scale="none", nesterov=nesterov)[0]
        si = _final("signum", prob, steps, lr=0.03, beta=0.9, nesterov=nesterov)[0]
        off = mu * (1 - np.eye(m, n))
        assert np.all(off == 0), "Muon left the diagonal"
        np.testing.assert_allclose(mu, si, rtol=0, atol=1e-12)


def test_muon_and_signum_differ_off_the_diagonal_class():
    prob = problems.make("diagonal_abs", runs=1, seed=0, m=5, n=5, init_scale=1.0, offdiag=0.5, dtype="float64")
    mu = _final("muon", prob, 5, lr=0.03, beta=0.9, orth="svd", scale="none")[0]
    si = _final("signum", prob, 5, lr=0.03, beta=0.9, nesterov=True)[0]
    assert not np.allclose(mu, si)


# --- MVR, STORM -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["muon_mvr1", "muon_mvr2"])
@pytest.mark.parametrize("orth_kind", ["svd", "ns_keller"])
def test_muon_mvr_with_gamma_zero_is_muon(name, orth_kind):
    prob = noisy_lsq()
    a = _final(name, prob, 15, gamma=0.0, lr=0.02, beta=0.9, orth=orth_kind, clip=False, allow_degenerate=True)[0]
    b = _final("muon", prob, 15, lr=0.02, beta=0.9, orth=orth_kind, nesterov=False)[0]
    np.testing.assert_array_equal(a, b)
    c = _final(name, prob, 15, gamma=0.5, lr=0.02, beta=0.9, orth=orth_kind)[0]
    assert not np.allclose(c, b)


def test_storm_with_an_exact_oracle_is_gradient_descent():
    """d_t - grad f(x_t) = beta (d_{t-1} - grad f(x_{t-1})) = ... = 0 with d_1 = grad f(x_1)."""
    prob = problems.make("power_law_lsq", runs=2, seed=[0, 1], m=4, n=6, dtype="float64")
    a = _final("storm", prob, 20, lr=0.5, beta=0.9)[0]
    b = _final("gd", prob, 20, lr=0.5)[0]
    c = _final("sgd", prob, 20, lr=0.5, beta=0.0)[0]
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(b, c)
    noisy = noisy_lsq()
    assert not np.allclose(_final("storm", noisy, 20, lr=0.5, beta=0.9)[0], _final("gd", noisy, 20, lr=0.5)[0])


TWO_CALLS = {"muon_mvr2", "muon_mvr3", "storm", "gluon_mvr1", "gluon_mvr2"}


@pytest.mark.parametrize("name", sorted(runners.REGISTRY))
def test_oracle_calls_per_step(name):
    prob = noisy_lsq(1)
    res = runners.run(prob, runners.make(name), steps=5, log_points=2)
    assert res.oracle_calls_per_step == (2 if name in TWO_CALLS else 1)


def test_muon_sum_momentum_is_ema_up_to_scale():
    prob = noisy_lsq()
    for nest in (False, True):
        a = _final("muon", prob, 10, orth="svd", beta=0.8, nesterov=nest, momentum="sum")[0]
        b = _final("muon", prob, 10, orth="svd", beta=0.8, nesterov=nest, momentum="ema")[0]
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_gluon_special_cases():
    prob = noisy_lsq()
    # sign norm, radius 1: Signum
    np.testing.assert_allclose(
        _final("gluon", prob, 8, lr=0.01, beta=0.7, norms="sign")[0],
        _final("signum", prob, 8, lr=0.01, beta=0.7)[0],
        rtol=1e-13,
        atol=1e-15,
    )
    # Frobenius norm on one layer: normalized GD with EMA momentum
    np.testing.assert_allclose(
        _final("gluon", prob, 8, lr=0.01, beta=0.7, norms="frobenius")[0],
        _final("normalized_gd", prob, 8, lr=0.01, beta=0.7)[0],
        rtol=1e-12,
        atol=1e-14,
    )
    # (L0, L1) step with L1 = 0, L0 = 1/eta, lr = 1: spectral steepest descent eta ||M||_* UV^T
    np.testing.assert_allclose(
        _final("gluon", prob, 8, lr=1.0, beta=0.5, norms="spectral", step="l0l1", l0=1 / 0.05, l1=0.0, orth="svd")[0],
        _final("spectral_sd", prob, 8, lr=0.05, beta=0.5, orth="svd", scale="none")[0],
        rtol=1e-10,
        atol=1e-12,
    )


# --- error feedback ---------------------------------------------------------------------------


class RecordingOracle:
    def __init__(self, seed):
        self.rng, self.xp, self.calls, self.seen = np.random.default_rng(seed), np, 0, []

    def __call__(self, params):
        self.calls += 1
        g = tuple(self.rng.standard_normal(x.shape) for x in params)
        self.seen.append(g)
        return g


@pytest.mark.parametrize("compressor", ["scaled", "unit"])
def test_error_feedback_virtual_iterate_is_sgd(compressor):
    """With beta = 0: X_t - E_t = X_0 - lr sum_s G_s exactly (the EF invariant)."""
    opt = runners.make("ef_muon", lr=0.1, beta=0.0, nesterov=False, compressor=compressor)
    hp = opt.bind(2, BK64)
    x0 = (np.random.default_rng(1).standard_normal((2, 4, 6)),)
    params, state = x0, opt.init(x0, hp, np)
    total = np.zeros_like(x0[0])
    for t in range(1, 30):
        o = RecordingOracle(t)
        params, state = opt.step(params, state, o, t, hp)
        total += o.seen[0][0]
    np.testing.assert_allclose(params[0] - state["e"][0], x0[0] - 0.1 * total, rtol=1e-10, atol=1e-12)
    assert np.abs(state["e"][0]).max() < 10 * 0.1 * np.abs(total).max()


def test_scaled_compressor_is_a_contraction():
    p = np.random.default_rng(2).standard_normal((3, 5, 4))
    c = base.nuclear(p) / 4 * orth.orthogonalize(p, "svd")
    s = np.linalg.svd(p, compute_uv=False)
    lhs = ((c - p) ** 2).sum(axis=(1, 2))
    np.testing.assert_allclose(lhs, (s**2).sum(1) - s.sum(1) ** 2 / 4, rtol=1e-10)
    assert np.all(lhs <= (1 - 1 / 4) * (p**2).sum(axis=(1, 2)))


# --- the LMO table ----------------------------------------------------------------------------

PRIMAL = {  # the norms themselves, written independently
    "spectral": lambda z: np.linalg.norm(z, 2),
    "sign": lambda z: np.abs(z).max(),
    "row": lambda z: np.sqrt((z * z).sum(1)).max(),
    "column": lambda z: np.sqrt((z * z).sum(0)).max(),
    "frobenius": lambda z: np.sqrt((z * z).sum()),
}


@pytest.mark.parametrize("name", sorted(base.NORMS))
def test_lmo_direction_is_unit_and_attains_the_dual_norm(name):
    assert set(PRIMAL) == set(base.NORMS)
    rng = np.random.default_rng(3)
    u = rng.standard_normal((4, 5, 3))
    norm = base.NORMS[name]
    d = norm.direction(u, "svd", None)
    dual = norm.dual(u)[:, 0, 0]
    for r in range(4):
        assert PRIMAL[name](d[r]) == pytest.approx(1.0, rel=1e-12)
        assert (u[r] * d[r]).sum() == pytest.approx(dual[r], rel=1e-12)
        # no unit-ball point does better (random probes)
        for _ in range(20):
            z = rng.standard_normal((5, 3))
            z /= PRIMAL[name](z)
            assert (u[r] * z).sum() <= dual[r] * (1 + 1e-12)
    np.testing.assert_array_equal(norm.direction(np.zeros((2, 3, 3)), "svd", None), 0)


# --- tiny and huge gradients: same direction, no NaN (float32) --------------------------------


@pytest.mark.parametrize(
    "name,hp",
    [
        ("muon", {"orth": "svd"}),
        ("muon", {"orth": "ns_keller"}),
        ("muon", {"orth": "polar_express"}),
        ("normalized_gd", {}),
        ("signum", {}),
        ("gluon", {"norms": "row"}),
        ("gluon", {"norms": "column"}),
        ("gluon", {"norms": "frobenius"}),
        ("gluon", {"norms": "spectral"}),
    ],
)
@pytest.mark.parametrize("scale", [1e-30, 1e-20, 1e20, 1e30])
def test_tiny_and_huge_gradients_keep_their_direction(name, hp, scale):
    assert_direction_survives_scale(name, hp, scale)


# --- orth specs, parameter errors -------------------------------------------------------------


def test_user_coefficients_match_the_named_sets():
    u = np.random.default_rng(5).standard_normal((3, 4, 7))
    spec = "ns:" + ";".join(",".join(str(v) for v in abc) for abc in orth.KELLER)
    np.testing.assert_array_equal(orth.orthogonalize(u, spec), orth.orthogonalize(u, "ns_keller"))
    pe = "ns:scale=1.02;" + ";".join(",".join(repr(v) for v in abc) for abc in orth.POLAR_EXPRESS)
    np.testing.assert_array_equal(orth.orthogonalize(u, pe, 7), orth.orthogonalize(u, "polar_express", 7))
    if "test_user_set" not in orth.ORTH:
        orth.register_coefficients("test_user_set", [(2.0, -1.5, 0.5)], norm_scale=1.0)
    one = orth.orthogonalize(u, "test_user_set", 3)
    np.testing.assert_array_equal(one, orth.orthogonalize(u, "ns:2,-1.5,0.5", 3))
    assert runners.make("muon", orth="test_user_set").hp["orth"] == "test_user_set"
    # ns_steps: 0 = the kernel's default; more steps change the result
    np.testing.assert_array_equal(orth.orthogonalize(u, "polar_express", 0), orth.orthogonalize(u, "polar_express", 5))
    assert not np.allclose(orth.orthogonalize(u, "polar_express", 3), orth.orthogonalize(u, "polar_express", 5))


@pytest.mark.parametrize(
    "name,hp,field",
    [
        ("muon", {"orth": "nope"}, "orth"),
        ("muon", {"orth": "ns:1,2"}, "orth"),
        ("muon", {"orth": "ns:scale=-1;1,2,3"}, "orth"),
        ("muon", {"lr_schedule": "cosine"}, "horizon"),
        ("muon", {"lr_schedule": "linear", "horizon": 10, "warmup": 10}, "warmup"),
        ("muon", {"scale": "big"}, "scale"),
        ("gluon", {"norms": "spectral,nuclear"}, "norms"),
        ("gluon", {"radii": "1,-2"}, "radii"),
        ("gluon", {"constrained": True, "step": "l0l1"}, "constrained"),
        ("gluon", {"constrained": True, "lr": 2.0}, "lr"),
        ("gd", {"beta": 0.9}, "beta"),
    ],
)
def test_bad_hyperparameters_name_the_field(name, hp, field):
    with pytest.raises(ParamError, match=rf"^{field}:"):
        runners.make(name, **hp)


def test_too_many_per_layer_entries_is_an_error():
    prob = noisy_lsq(1)
    with pytest.raises(ParamError, match="^norms:"):
        runners.run(prob, runners.make("gluon", norms="spectral,sign"), steps=1)


def test_constant_schedule_binds_no_schedule():
    assert "_schedule" not in runners.make("muon").bind(2, BK64)
    assert "_schedule" in runners.make("muon", warmup=np.array([0, 3])).bind(2, BK64)
    assert "_schedule" in runners.make("muon", beta_q=0.5).bind(2, BK64)
