"""sample_lsq (the benchmark's workload W) against its definition: f = ||X A - Y||^2 / 2N."""

import numpy as np

import problems
import runners


def make(**kw):
    base = dict(runs=3, seed=[0, 1, 0], dtype="float64", m=4, n=6, samples=15, alpha=[0.0, 1.0, 1.0], label_noise=0.5)
    base.update(kw)
    return problems.make("sample_lsq", **base)


def direct_loss(P, x):
    a, y = P.a, P.y
    r = x @ a - y
    return 0.5 * (r * r).sum(axis=(1, 2)) / P.samples


def test_loss_gap_and_gradient_match_the_definition():
    P = make()
    x = np.random.default_rng(0).standard_normal((3, 4, 6))
    np.testing.assert_allclose(P.loss((x,)), direct_loss(P, x), rtol=1e-12)
    xhat, fstar = P.optimum()
    np.testing.assert_allclose(fstar, direct_loss(P, xhat[0]), rtol=1e-12)
    np.testing.assert_allclose(P.gap(xhat), 0, atol=1e-14)
    g = P.grad((x,))[0]
    eps = 1e-6
    for i, j in [(0, 0), (3, 5), (1, 2)]:
        e = np.zeros_like(x)
        e[:, i, j] = eps
        fd = (direct_loss(P, x + e) - direct_loss(P, x - e)) / (2 * eps)
        np.testing.assert_allclose(g[:, i, j], fd, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(P.grad(xhat)[0], 0, atol=1e-12)


def test_instance_depends_only_on_seed_and_parameters():
    P = make()
    np.testing.assert_array_equal(P.a[0][0], P.a[2][0])  # seed 0 twice; row 1 has scale 1 for every alpha
    Q = make(runs=1, seed=1, alpha=1.0)
    np.testing.assert_array_equal(Q.a[0], P.a[1])
    np.testing.assert_array_equal(Q.y[0], P.y[1])


def test_constants_and_gd_converges():
    P = make(samples=40, label_noise=0.0)
    c = P.constants()
    assert np.all(c["mu"] > 0) and np.all(c["L"] >= c["mu"]) and np.all(c["hessian_rank"] == 24)
    np.testing.assert_allclose(c["f_star"], 0, atol=1e-20)
    res = runners.run(P, runners.make("gd", lr=1.0 / c["L"]), steps=400, log_points=5)
    assert np.all(res.final["gap"] < 1e-6 * res.curves["gap"][0])


def test_take_equals_rebuilding_the_sub_batch():
    P = make(runs=4, seed=[3, 1, 2, 1], alpha=[0.0, 0.5, 1.0, 1.5], label_noise=[0.1, 0.2, 0.3, 0.4])
    idx = np.array([3, 1])
    sub = P.take(idx)
    ref = make(runs=2, seed=[1, 1], alpha=[1.5, 0.5], label_noise=[0.4, 0.2])
    for k in ("a", "at_n", "y", "xhat", "s", "f_star", "cov", "xhat_fro", "seeds"):
        np.testing.assert_array_equal(getattr(sub, k), getattr(ref, k), err_msg=k)
    for k, v in ref.constants().items():
        np.testing.assert_array_equal(sub.constants()[k], v, err_msg=k)
    assert sub.runs == 2 and P.runs == 4
