"""Shampoo and SOAP (runners/optimizers/preconditioned.py) against per-run float64 loops written here
from the papers' algorithm boxes (Shampoo: arXiv 1802.09568 v2, Algorithm 1, with L_0 = eps I and
the inverse 4th root from scipy's fractional_matrix_power, an independent algorithm; SOAP: arXiv
2409.11321 v1, Algorithm 3), and against closed forms computed by hand from the SVD of G:

- Shampoo, one step from zero state: X_1 = X_0 - lr U diag(s / sqrt(s^2 + eps)) V^T;
- Shampoo under a constant gradient: L_t = eps I + t G G^T, so step t is
  U diag(s / sqrt(tau s^2 + eps)) V^T, tau the step of the last root refresh;
- Shampoo without memory (beta2 = 0) is Muon with the exact polar factor, up to the eps damping;
- SOAP without memory (beta = beta2 = shampoo_beta = 0, frequency 1) under a constant gradient
  steps by U diag(s / (s + eps)) V^T from step 2 on;
- SOAP on diagonal gradients (its eigenbasis is the standard one) is ``adam`` one step late.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import fractional_matrix_power

import runners
from problems.backend import get_backend

sys.path.insert(0, str(Path(__file__).parent))
from runner_fixtures import FakeOracle, FixedOracle, assert_matches_per_run_reference, fake_data  # noqa: E402
from test_zoo_reference import beta_at, lr_at  # noqa: E402  (the reference schedule formulas)

B = 3
SHAPES = ((4, 3), (2, 3))  # null spaces of L_1, R_1 of dimension <= 1: eigenvectors unique up to sign
STEPS = 6
BK = get_backend("numpy", "float64")


def _data(seed=0, shapes=SHAPES):
    return fake_data(shapes, STEPS, seed)


# --- the references, one run and one layer at a time ------------------------------------------


def root4(a):
    """A^(-1/4) for SPD A, by scipy's Schur-Pade algorithm (not an eigendecomposition)."""
    return np.real(fractional_matrix_power(a, -0.25))


def shampoo_ref(h, xs, st, g, t):
    """Algorithm 1 of arXiv 1802.09568: L_0 = eps I, L_t = L_{t-1} + G G^T (or, with beta2 < 1,
    L_t = beta2 L_{t-1} + (1 - beta2) G G^T from 0, rooted as L_t + eps I); optional EMA momentum
    with bias correction; roots recomputed every f steps."""
    lr, b = lr_at(h, t), beta_at(h, t, 0.0)
    b2, eps, f, wd = (
        h.get("beta2", 1.0),
        h.get("eps", 1e-6),
        h.get("precondition_frequency", 1),
        h.get("weight_decay", 0.0),
    )
    st["p1"] = st.get("p1", 1.0) * b
    out = []
    for i, (x, gi) in enumerate(zip(xs, g)):
        m, n = x.shape
        if t == 1:
            st[i] = {
                "L": eps * np.eye(m) if b2 == 1 else np.zeros((m, m)),
                "R": eps * np.eye(n) if b2 == 1 else np.zeros((n, n)),
                "M": np.zeros_like(x),
            }
        s = st[i]
        if b2 == 1:
            s["L"], s["R"] = s["L"] + gi @ gi.T, s["R"] + gi.T @ gi
        else:
            s["L"], s["R"] = b2 * s["L"] + (1 - b2) * gi @ gi.T, b2 * s["R"] + (1 - b2) * gi.T @ gi
        s["M"] = b * s["M"] + (1 - b) * gi
        if (t - 1) % f == 0:
            damp = 0.0 if b2 == 1 else eps
            s["PL"], s["PR"] = root4(s["L"] + damp * np.eye(m)), root4(s["R"] + damp * np.eye(n))
        out.append(x * (1 - lr * wd) - lr * s["PL"] @ (s["M"] / (1 - st["p1"])) @ s["PR"])
    return out


def soap_ref(h, xs, st, g, t):
    """Algorithm 3 of arXiv 2409.11321, the first step building L, R and Q only."""
    lr, b1 = lr_at(h, t), beta_at(h, t, 0.95)
    b2, sb, eps = h.get("beta2", 0.95), h.get("shampoo_beta", 0.95), h.get("eps", 1e-8)
    f, wd = h.get("precondition_frequency", 10), h.get("weight_decay", 0.0)
    out = []
    if t > 1:
        st["p1"], st["p2"] = st.get("p1", 1.0) * b1, st.get("p2", 1.0) * b2
    for i, (x, gi) in enumerate(zip(xs, g)):
        m, n = x.shape
        if t == 1:
            st[i] = {"L": np.zeros((m, m)), "R": np.zeros((n, n)), "M": np.zeros_like(x), "V": np.zeros_like(x)}
            out.append(x)
        else:
            s = st[i]
            ql, qr = s["QL"], s["QR"]
            gp = ql.T @ gi @ qr
            s["M"] = b1 * s["M"] + (1 - b1) * gi
            mp = ql.T @ s["M"] @ qr
            s["V"] = b2 * s["V"] + (1 - b2) * gp * gp
            npr = (mp / (1 - st["p1"])) / (np.sqrt(s["V"] / (1 - st["p2"])) + eps)
            out.append(x * (1 - lr * wd) - lr * ql @ npr @ qr.T)
        s = st[i]
        s["L"] = sb * s["L"] + (1 - sb) * gi @ gi.T
        s["R"] = sb * s["R"] + (1 - sb) * gi.T @ gi
        if (t - 1) % f == 0:
            s["QL"], s["QR"] = np.linalg.eigh(s["L"])[1], np.linalg.eigh(s["R"])[1]
    return out


REFS = {"shampoo": shampoo_ref, "soap": soap_ref}

LR = [0.01, 0.02, 0.05]
BETA = [0.0, 0.5, 0.9]
WD = [0.0, 0.1, 0.3]
CASES = [
    ("shampoo", {"lr": LR, "eps": [1e-6, 1e-3, 0.1]}),
    ("shampoo", {"lr": LR, "beta": BETA, "beta2": [0.0, 0.5, 0.99], "weight_decay": WD, "precondition_frequency": 2}),
    ("shampoo", {"lr": LR, "beta": BETA, "eps": 1e-4, "precondition_frequency": 3}),
    (
        "shampoo",
        {
            "lr": LR,
            "beta": [0.5, 0.8, 0.9],
            "lr_schedule": "cosine",
            "horizon": 6,
            "warmup": [0, 1, 2],
            "beta_q": [0, 0.5, 1],
        },
    ),
    ("soap", {"lr": LR, "beta": BETA, "beta2": [0.5, 0.9, 0.99], "precondition_frequency": 1}),
    (
        "soap",
        {
            "lr": LR,
            "beta": BETA,
            "beta2": [0.0, 0.5, 0.95],
            "shampoo_beta": [0.0, 0.5, 0.9],
            "eps": [1e-8, 1e-3, 0.1],
            "precondition_frequency": 2,
            "weight_decay": WD,
        },
    ),
    ("soap", {"lr": LR, "precondition_frequency": 3, "lr_schedule": "linear", "horizon": 6, "beta_q": [0, 0.5, 1]}),
]


@pytest.mark.parametrize("name,hp", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_steps_equal_the_per_run_reference(name, hp):
    assert_matches_per_run_reference(
        name, hp, _data(), lambda hr, xs, st, grad, t: REFS[name](hr, xs, st, grad(xs), t), backend=BK
    )


# --- closed forms ---------------------------------------------------------------------------------


def _run(name, hp, x0, oracle_for, steps, backend=BK):
    opt = runners.make(name, **hp)
    bound = opt.bind(x0[0].shape[0], backend)
    params, state = x0, opt.init(x0, bound, np)
    for t in range(1, steps + 1):
        params, state = opt.step(params, state, oracle_for(t), t, bound)
    return params


def _svd_map(g, fn):
    """U diag(fn(s)) V^T per run (thin SVD)."""
    u, sv, vt = np.linalg.svd(g, full_matrices=False)
    return (u * fn(sv)[:, None, :]) @ vt


CF_SHAPES = ((4, 3), (3, 5))


def _constant_case(seed=1):
    rng = np.random.default_rng(seed)
    x0 = tuple(rng.standard_normal((B, m, n)) for m, n in CF_SHAPES)
    g = tuple(np.array([1.0, 0.1, 3.0])[:, None, None] * rng.standard_normal((B, m, n)) for m, n in CF_SHAPES)
    return x0, g


def test_shampoo_first_step_is_the_damped_polar_factor():
    x0, g = _constant_case()
    eps = np.array([1e-8, 1e-2, 1.0])
    lr = np.array([0.1, 0.2, 0.3])
    got = _run("shampoo", {"lr": lr, "eps": eps}, x0, lambda t: FixedOracle(g), 1)
    for x, xi, gi in zip(got, x0, g):
        want = xi - lr[:, None, None] * _svd_map(gi, lambda s: s / np.sqrt(s * s + eps[:, None]))
        np.testing.assert_allclose(x, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("freq", [1, 3])
def test_shampoo_under_a_constant_gradient_matches_the_closed_form(freq):
    x0, g = _constant_case(2)
    eps, lr, steps = np.array([1e-6, 1e-3, 0.5]), 0.1, 7
    got = _run("shampoo", {"lr": lr, "eps": eps, "precondition_frequency": freq}, x0, lambda t: FixedOracle(g), steps)
    for x, xi, gi in zip(got, x0, g):
        want = xi.copy()
        for t in range(1, steps + 1):
            tau = 1 + freq * ((t - 1) // freq)  # L at the last refresh: eps I + tau G G^T
            want -= lr * _svd_map(gi, lambda s: s / np.sqrt(tau * s * s + eps[:, None]))
        np.testing.assert_allclose(x, want, rtol=1e-10, atol=1e-12)


def test_shampoo_without_memory_is_muon_with_the_exact_polar_factor():
    x0, h, s, noise = _data(3, CF_SHAPES)
    sham = {"lr": 0.05, "beta2": 0.0, "eps": 1e-14}
    muon = {"lr": 0.05, "beta": 0.0, "nesterov": False, "orth": "svd", "scale": "none"}
    a = _run("shampoo", sham, x0, lambda t: FakeOracle(h, s, noise[t - 1]), STEPS)
    b = _run("muon", muon, x0, lambda t: FakeOracle(h, s, noise[t - 1]), STEPS)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-8)


def test_soap_without_memory_steps_by_the_damped_polar_factor():
    # eps >= 1e-4: G' in the null directions of L, R is rounding (~1e-16 |G|), which Adam's division
    # amplifies by 1/eps; the closed form is exact arithmetic
    x0, g = _constant_case(4)
    eps, lr, steps = np.array([1e-4, 1e-2, 0.3]), 0.1, 5
    hp = {"lr": lr, "beta": 0.0, "beta2": 0.0, "shampoo_beta": 0.0, "eps": eps, "precondition_frequency": 1}
    got = _run("soap", hp, x0, lambda t: FixedOracle(g), steps)
    for x, xi, gi in zip(got, x0, g):
        want = xi - lr * (steps - 1) * _svd_map(gi, lambda s: s / (s + eps[:, None]))
        np.testing.assert_allclose(x, want, rtol=1e-9, atol=1e-11)


def test_soap_on_diagonal_gradients_is_adam_one_step_late():
    rng = np.random.default_rng(5)
    shapes, steps = ((4, 4), (3, 3)), 8
    diag = [np.eye(m)[None] for m, _ in shapes]
    x0 = tuple(rng.standard_normal((B, m, n)) * d for (m, n), d in zip(shapes, diag))
    h = tuple(rng.uniform(0.5, 2.0, (B, m, n)) * d for (m, n), d in zip(shapes, diag))
    s = tuple(rng.standard_normal((B, m, n)) * d for (m, n), d in zip(shapes, diag))
    hp = {"lr": np.array([0.01, 0.03, 0.1]), "beta": np.array([0.0, 0.5, 0.9]), "beta2": 0.9, "eps": 1e-8}
    oracle = lambda t: FakeOracle(h, s, tuple(np.zeros_like(x) for x in x0))  # noqa: E731
    soap = _run("soap", {**hp, "shampoo_beta": 0.7, "precondition_frequency": 2}, x0, oracle, steps)
    adam = _run("adam", hp, x0, oracle, steps - 1)
    for x, y in zip(soap, adam):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["shampoo", "soap"])
def test_a_non_finite_run_gets_nan_and_leaves_its_neighbours_alone(name):
    x0, h, s, noise = _data(6)
    poisoned = [tuple(n.copy() for n in step) for step in noise]
    poisoned[1][0][0, 0, 0] = np.nan  # run 0's gradient at step 2
    hp = {"lr": 0.05, "precondition_frequency": 1}
    bad = _run(name, hp, x0, lambda t: FakeOracle(h, s, poisoned[t - 1]), 4)
    good = _run(name, hp, x0, lambda t: FakeOracle(h, s, noise[t - 1]), 4)
    assert np.isnan(bad[0][0]).all()
    for x, y in zip(bad, good):
        np.testing.assert_array_equal(x[1:], y[1:])
