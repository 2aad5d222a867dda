"""The 2025-26 Muon variants (NorMuon, AdaMuon, Dion, Muon-MVR3) against a slow per-run float64
reference written here from each paper's algorithm (a Python loop over runs and layers; exact
polar factors from np.linalg.svd; Dion's QR by modified Gram-Schmidt), over a few steps with
per-run hyperparameters; then identities each method must satisfy (docs/optimizers.md).

The oracle is a fake with a known gradient G_l = H_l * (X_l - S_l) + N_{t,l}: N_t is the step's
draw, the same at every point of that step (so MVR3's G(X_t; xi_{t-1}) is H (X_t - S) + N_{t-1})."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from runner_fixtures import (  # noqa: E402
    FixedOracle,
    assert_direction_survives_scale,
    assert_matches_per_run_reference,
    fake_data,
    noisy_lsq,
)

import problems
import runners
from problems import ParamError
from problems.backend import get_backend

SHAPES = ((4, 3), (2, 5))
STEPS = 4
BK = get_backend("numpy", "float64")
KELLER = [(3.4445, -4.7750, 2.0315)] * 5


# --- the reference, one run and one layer at a time ------------------------------------------


def polar(a):
    """The partial isometry U_r V_r^T of a's numerically nonzero part (sign patterns of small
    matrices are often singular: a 4 x 3 matrix of signs can have rank 2)."""
    u, sv, vt = np.linalg.svd(a, full_matrices=False)
    r = int((sv > max(a.shape) * np.finfo(float).eps * sv[0]).sum())
    return u[:, :r] @ vt[:r]


def ns_keller(a):
    tall = a.shape[0] > a.shape[1]
    x = a.T.copy() if tall else a.copy()
    x = x / np.sqrt((x * x).sum())
    for ca, cb, cc in KELLER:
        g = x @ x.T
        x = ca * x + cb * (g @ x) + cc * (g @ g @ x)
    return x.T if tall else x


def orth_ref(a, h):
    return polar(a) if h.get("orth", "ns_keller") == "svd" else ns_keller(a)


def fro(a):
    return math.sqrt((a * a).sum())


def gram_schmidt(a):
    """Orthonormal columns spanning a's columns (modified Gram-Schmidt; a has full column rank)."""
    q = np.zeros_like(a)
    for j in range(a.shape[1]):
        v = a[:, j].copy()
        for i in range(j):
            v -= (q[:, i] @ v) * q[:, i]
        q[:, j] = v / math.sqrt(v @ v)
    return q


def ref_step(name, h, xs, st, grad, t):
    """One step of ``name`` on one run; ``grad(points, lag)`` gives the gradients under the step's
    draw (lag 0) or the previous step's draw (lag 1)."""
    lr, b, wd = h["lr"], h.get("beta", 0.95), h.get("weight_decay", 0.0)
    g = grad(xs, 0)
    zeros = [np.zeros_like(x) for x in xs]
    out = []
    if name in ("normuon", "adamuon"):
        nest = h.get("nesterov", name == "adamuon")
        b2, eps = h.get("beta2", 0.95), h.get("eps", 1e-10 if name == "normuon" else 1e-8)
        m = [b * mo + (1 - b) * gi for mo, gi in zip(st.get("m", zeros), g)]
        u = [(1 - b) * gi + b * mi for gi, mi in zip(g, m)] if nest else m
        st["m"], vs = m, []
        for i, (x, ui) in enumerate(zip(xs, u)):
            rows, cols = x.shape
            if name == "normuon":  # per neuron: one second moment per row of O
                o = orth_ref(ui, h)
                v = b2 * st.get("v", [np.zeros((r_, 1)) for r_, _ in SHAPES])[i] + (1 - b2) * (o * o).mean(1)[:, None]
            else:  # AdaMuon: sign-stabilized, element-wise second moment
                o = orth_ref(np.sign(ui) if h.get("sign", True) else ui, h)
                v = b2 * st.get("v", zeros)[i] + (1 - b2) * o * o
            vs.append(v)
            oh = o / (np.sqrt(v) + eps)
            if h.get("norm_to", "polar") == "orth":  # the NorMuon authors' code: keep ||O||_F, Muon's scale
                step = math.sqrt(max(1.0, rows / cols)) * fro(o) * oh / fro(oh)
            else:  # the papers: RMS 0.2, i.e. 0.2 sqrt(m n) O^ / ||O^||_F
                step = 0.2 * math.sqrt(rows * cols) * oh / fro(oh)
            out.append(x * (1 - lr * wd) - lr * step)
        st["v"] = vs
        return out
    if name == "dion":
        mu, ms, qs = b, [], []
        for i, (x, gi) in enumerate(zip(xs, g)):
            bm = st["m"][i] + gi
            q = st["q"][i]
            for _ in range(h.get("power_iters", 1)):
                p = gram_schmidt(bm @ q)
                r = bm.T @ p
                q = r / np.sqrt((r * r).sum(axis=0, keepdims=True))
            ms.append(bm - (1 - mu) * p @ r.T)
            qs.append(q)
            rows, cols = x.shape
            out.append(x * (1 - lr * wd) - lr * math.sqrt(rows / cols) * p @ q.T)
        st["m"], st["q"] = ms, qs
        return out
    if name == "muon_mvr3":
        gamma = h.get("gamma", 0.025)
        g_last = g if t == 1 else grad(xs, 1)  # the previous step's draw at the current point
        c = [gi + gamma * b / (1 - b) * (gi - gl) for gi, gl in zip(g, g_last)]
        if h.get("clip"):
            c = [ci / max(1.0, fro(ci)) for ci in c]
        m = [b * mo + (1 - b) * ci for mo, ci in zip(st.get("m", zeros), c)]
        st["m"] = m
        return [
            x * (1 - lr * wd) - lr * math.sqrt(max(1.0, x.shape[0] / x.shape[1])) * orth_ref(mi, h)
            for x, mi in zip(xs, m)
        ]
    raise AssertionError(name)


LR = [0.01, 0.02, 0.05]
BETA = [0.0, 0.5, 0.9]
WD = [0.0, 0.1, 0.3]
CASES = [
    ("normuon", {"lr": LR, "beta": BETA, "beta2": [0.0, 0.5, 0.95], "orth": "svd", "weight_decay": WD}),
    ("normuon", {"lr": LR, "beta": BETA, "norm_to": "orth", "scale": "original", "nesterov": True}),
    ("adamuon", {"lr": LR, "beta": BETA, "beta2": [0.3, 0.9, 0.999], "orth": "svd", "eps": [1e-8, 1e-3, 0.1]}),
    ("adamuon", {"lr": LR, "beta": BETA, "sign": False, "nesterov": False, "weight_decay": WD}),
    ("dion", {"lr": LR, "beta": BETA, "rank_fraction": 0.5, "weight_decay": WD}),
    ("dion", {"lr": LR, "beta": [0.5, 0.9, 0.95], "rank_fraction": 1.0, "power_iters": 3}),
    ("muon_mvr3", {"lr": LR, "beta": [0.5, 0.8, 0.95], "gamma": [0.1, 0.5, 1.0], "orth": "svd", "clip": True}),
    ("muon_mvr3", {"lr": LR, "beta": [0.5, 0.8, 0.95], "gamma": [0.1, 0.5, 1.0], "weight_decay": WD}),
]


def _dion_state(state, r):
    """Dion's initial right factor: an input of the method, taken as given from the batched init."""
    return {"m": [np.zeros(shape) for shape in SHAPES], "q": [q[r] for q in state["q"]]}


@pytest.mark.parametrize("name,hp", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_first_steps_equal_the_per_run_reference(name, hp):
    assert_matches_per_run_reference(
        name,
        hp,
        fake_data(SHAPES, STEPS),
        lambda hr, xs, st, grad, t: ref_step(name, hr, xs, st, grad, t),
        ref_state=_dion_state if name == "dion" else None,
        backend=BK,
    )


# --- identities ------------------------------------------------------------------------------


def _final(name, prob, steps=15, **hp):
    return runners.run(prob, runners.make(name, **hp), steps=steps, seed=[0, 1], log_points=3).params[0]


@pytest.mark.parametrize("beta2", [0.0, 0.5, 0.95])
@pytest.mark.parametrize("norm_to,scale", [("polar", "rms"), ("orth", "original")])
def test_normuon_with_exact_orth_on_wide_layers_is_muon(beta2, norm_to, scale):
    """m <= n, orth = svd, full-rank momenta (a batch of 8 >= m): O O^T = I, every row of O has
    norm 1, so the per-neuron normalizer is the same for every row (for every beta2) and the
    rescale restores Muon's step exactly."""
    wide = noisy_lsq(m=4, n=6, batch_size=8)
    hp = dict(lr=0.05, beta=0.9, orth="svd", scale=scale)
    a = _final("normuon", wide, beta2=beta2, norm_to=norm_to, **hp)
    np.testing.assert_allclose(a, _final("muon", wide, nesterov=False, **hp), rtol=1e-10, atol=1e-12)
    tall = noisy_lsq(m=6, n=4, batch_size=8)  # rows of O no longer have equal norms
    assert not np.allclose(
        _final("normuon", tall, beta2=beta2, norm_to=norm_to, **hp),
        _final("muon", tall, nesterov=False, **hp),
        rtol=1e-4,
    )


HADAMARD = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], float)


@pytest.mark.parametrize("orth_kind", ["svd", "ns_keller"])
def test_adamuon_on_a_hadamard_sign_pattern_has_a_closed_form(orth_kind):
    """G = H * A with A > 0: every momentum has sign pattern H, orth(H) is proportional to H (all
    singular values equal), so O has entries of one magnitude, V is constant, and the RMS-aligned
    step is 0.2 lr sqrt(16) H / ||H||_F = 0.2 lr H: X_t = X_0 - 0.2 lr t H, whatever A, beta, beta2, eps."""
    a = np.exp(np.random.default_rng(0).uniform(-4.0, 4.0, (2, 4, 4)))  # magnitudes over 3.5 decades
    x0 = (np.random.default_rng(4).standard_normal((2, 4, 4)),)
    lr = np.array([0.01, 0.03])
    opt = runners.make("adamuon", lr=lr, beta=np.array([0.5, 0.95]), beta2=np.array([0.0, 0.9]), orth=orth_kind)
    bound = opt.bind(2, BK)
    params, state = x0, opt.init(x0, bound, np)
    for t in range(1, 6):
        params, state = opt.step(params, state, FixedOracle((HADAMARD * a,)), t, bound)
        np.testing.assert_allclose(params[0], x0[0] - 0.2 * lr[:, None, None] * t * HADAMARD, rtol=1e-12, atol=1e-12)
    # without the sign, A matters: here sign(polar(H * A)) != H in both runs, so the step differs
    assert all((np.sign(polar(HADAMARD * ai)) != HADAMARD).any() for ai in a)
    plain = runners.make("adamuon", lr=lr, sign=False, orth=orth_kind)
    bound = plain.bind(2, BK)
    got = plain.step(x0, plain.init(x0, bound, np), FixedOracle((HADAMARD * a,)), 1, bound)[0][0]
    for r in range(2):
        assert not np.allclose(got[r] - x0[0][r], -0.2 * lr[r] * HADAMARD, rtol=1e-2)


def test_dion_at_full_rank_with_converged_power_iteration_is_heavy_ball_muon():
    """r = min(m, n): P R^T = P P^T B = B, so M = beta B and B_t = beta B_{t-1} + G_t; converged
    orthogonal iteration makes P the left singular vectors, so P Q^T = P D^-1 P^T B = polar(B)."""
    for prob in (noisy_lsq(), noisy_lsq(m=4, n=6, batch_size=8)):  # rank-3 and full-rank first gradients
        hp = dict(lr=0.05, beta=0.9)
        muon = _final("muon", prob, momentum="sum", nesterov=False, orth="svd", scale="fan", **hp)
        conv = _final("dion", prob, rank_fraction=1.0, power_iters=200, **hp)
        np.testing.assert_allclose(conv, muon, rtol=1e-8, atol=1e-10)
        one = _final("dion", prob, rank_fraction=1.0, power_iters=1, **hp)  # the paper's single iteration: not Muon
        assert np.abs(one - muon).max() > 1e-3 * np.abs(muon).max()


@pytest.mark.parametrize("fraction,r", [(0.2, 2), (0.5, 3), (1.0, 6)])
def test_dion_steps_have_rank_r(fraction, r):
    """r = ceil(fraction min(m, n)); the first step -lr s P Q^T (from the same X_0, so the
    difference of two learning rates is that step) has rank exactly r."""
    prob = noisy_lsq(m=8, n=6, batch_size=8)  # full-rank gradients
    a, b = (_final("dion", prob, steps=1, lr=lr, rank_fraction=fraction) for lr in (0.05, 0.1))
    sv = np.linalg.svd(b - a, compute_uv=False)
    assert np.all(sv[:, r - 1] > 1e-8 * sv[:, 0]) and np.all(sv[:, r:] < 1e-10 * sv[:, :1])


def test_muon_mvr3_with_an_exact_oracle_is_muon():
    """G_last = G(X_t; xi_{t-1}) = grad f(X_t) = G: the correction vanishes."""
    exact = problems.make("power_law_lsq", runs=2, seed=[0, 1], m=4, n=6, dtype="float64")
    hp = dict(lr=0.02, beta=0.9, orth="svd")
    np.testing.assert_allclose(
        _final("muon_mvr3", exact, gamma=0.5, **hp), _final("muon", exact, nesterov=False, **hp), rtol=1e-12, atol=1e-14
    )
    noisy = noisy_lsq()
    assert not np.allclose(_final("muon_mvr3", noisy, gamma=0.5, **hp), _final("muon", noisy, nesterov=False, **hp))


@pytest.mark.parametrize("hp,field", [(dict(gamma=0.0), "gamma"), (dict(beta=0.0), "beta")])
def test_muon_mvr3_refuses_the_settings_mvr2_refuses(hp, field):
    with pytest.raises(ParamError, match=rf"^{field}: got .*allow_degenerate = true"):
        runners.make("muon_mvr3", **hp)
    runners.make("muon_mvr3", gamma=1.0, beta=0.0, beta_q=0.5)  # no MVR1-type collapse at gamma = 1 (docs)


def test_muon_mvr3_at_gamma_zero_is_muon_bit_for_bit():
    prob = noisy_lsq()
    a = _final("muon_mvr3", prob, gamma=0.0, lr=0.02, beta=0.9, allow_degenerate=True)
    np.testing.assert_array_equal(a, _final("muon", prob, lr=0.02, beta=0.9, nesterov=False))


@pytest.mark.parametrize(
    "name,hp",
    [
        ("normuon", {}),
        ("normuon", {"norm_to": "orth", "orth": "svd"}),
        ("adamuon", {}),
        ("adamuon", {"sign": False}),
        ("dion", {"rank_fraction": 0.5}),
        ("muon_mvr3", {}),
    ],
)
@pytest.mark.parametrize("scale", [1e-30, 1e-20, 1e20, 1e30])
def test_tiny_and_huge_gradients_keep_their_direction(name, hp, scale):
    """float32: the same step at gradient scale 1e-30..1e30 as at unit scale, and no float warning."""
    assert_direction_survives_scale(name, hp, scale)
