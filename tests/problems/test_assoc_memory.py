"""assoc_memory against finite differences, a per-item closed form and its stated equivariance."""

import numpy as np
import scipy.special
import scipy.stats

import problems
import runners


def make(**kw):
    base = dict(runs=2, seed=[0, 1], backend="numpy", dtype="float64", items=6, alpha=[0.5, 1.5])
    base.update(kw)
    return problems.make("assoc_memory", **base)


def test_loss_is_frequency_weighted_cross_entropy():
    P = make()
    w = np.random.default_rng(0).standard_normal((2, 6, 6))
    for b, a in enumerate([0.5, 1.5]):
        p = np.arange(1, 7) ** -a
        p /= p.sum()
        ce = [-scipy.special.log_softmax(w[b][:, i])[i] for i in range(6)]
        np.testing.assert_allclose(P.loss((w,))[b], np.dot(p, ce), rtol=1e-12)


def test_gradient_equals_finite_differences():
    P = make()
    w = np.random.default_rng(1).standard_normal((2, 6, 6))
    g = P.grad((w,))[0]
    h = 1e-6
    for i, j in [(0, 0), (2, 5), (5, 1)]:
        e = np.zeros_like(w)
        e[:, i, j] = h
        np.testing.assert_allclose(g[:, i, j], (P.loss((w + e,)) - P.loss((w - e,))) / (2 * h), rtol=1e-6, atol=1e-10)


def test_gd_moves_items_at_speeds_proportional_to_frequency():
    """From W = 0 the first GD step raises item i's correct score by lr p_i (1 - 1/N)."""
    P = make(runs=1, seed=0, alpha=1.0)
    res = runners.run(P, runners.make("gd", lr=0.5), steps=1, seed=0)
    w = res.params[0][0]
    p = np.arange(1, 7) ** -1.0
    p /= p.sum()
    np.testing.assert_allclose(np.diag(w), 0.5 * p * (1 - 1 / 6), rtol=1e-12)


def test_muon_first_step_is_even_across_items():
    """From W = 0 the gradient is (1/N) 1 p^T - diag(p): GD's step on item i is proportional to
    p_i (spread p_1/p_N = N^alpha = 16), while the exact polar step spreads far less across items."""
    P = make(runs=1, seed=0, alpha=1.0, items=16)
    mu = runners.run(P, runners.make("muon", lr=0.1, beta=0.0, nesterov=False, orth="svd"), steps=1, seed=0).params[0][
        0
    ]
    gd = runners.run(P, runners.make("gd", lr=0.1), steps=1, seed=0).params[0][0]
    spread = lambda d: d.max() / d.min()
    assert spread(np.diag(gd)) > 10
    assert spread(np.diag(mu)) < 2


def test_mode_errors_and_no_minimizer():
    P = make(log_modes=4)
    w = np.zeros((2, 6, 6))
    m = P.extra_metrics((w,))
    assert set(m) == {"mode_err_1", "mode_err_2", "mode_err_3", "mode_err_6"}  # round(geomspace(1, 6, 4))
    for v in m.values():
        np.testing.assert_allclose(v, 1 - 1 / 6)
    xs, fstar = P.optimum()
    assert np.isnan(xs[0]).all() and np.all(fstar == 0)


def test_label_flip_loss_is_cross_entropy_against_the_noisy_answer():
    """With label_flip e the target of item i is (1 - e) e_i + e / N (scipy's log_softmax)."""
    P = make(label_flip=[0.1, 0.3])
    w = np.random.default_rng(2).standard_normal((2, 6, 6))
    for b, (a, e) in enumerate([(0.5, 0.1), (1.5, 0.3)]):
        p = np.arange(1, 7) ** -a
        p /= p.sum()
        ce = [-np.dot((1 - e) * np.eye(6)[i] + e / 6, scipy.special.log_softmax(w[b][:, i])) for i in range(6)]
        np.testing.assert_allclose(P.loss((w,))[b], np.dot(p, ce), rtol=1e-12)
        q = (1 - e) * np.eye(6) + e / 6
        fstar = np.dot(p, [scipy.stats.entropy(q[:, i]) for i in range(6)])
        np.testing.assert_allclose(P.gap((w,))[b], P.loss((w,))[b] - fstar, rtol=1e-12)


def test_label_flip_gradient_and_attained_minimum():
    P = make(label_flip=0.2)
    w = np.random.default_rng(3).standard_normal((2, 6, 6))
    g = P.grad((w,))[0]
    h = 1e-6
    for i, j in [(0, 0), (3, 1)]:
        e = np.zeros_like(w)
        e[:, i, j] = h
        np.testing.assert_allclose(g[:, i, j], (P.loss((w + e,)) - P.loss((w - e,))) / (2 * h), rtol=1e-6, atol=1e-10)
    (xs,), fstar = P.optimum()
    np.testing.assert_allclose(P.gap((xs,)), 0.0, atol=1e-12)
    np.testing.assert_allclose(P.grad((xs,))[0], 0.0, atol=1e-12)
    assert np.all(P.gap((w,)) > 0)  # the minimum: any other point is worse (strictly, off the column shifts)
    (x0,), _ = make().optimum()
    assert np.isnan(x0).all()  # without label noise there is no minimizer
