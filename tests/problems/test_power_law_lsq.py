"""power_law_lsq against closed forms, Monte Carlo and finite differences."""

import numpy as np
import pytest

import problems
import runners
from problems.backend import RunRNG, get_backend


def make(**kw):
    base = dict(runs=1, seed=0, backend="numpy", dtype="float64", m=4, n=6, alpha=1.0, beta=0.5)
    base.update(kw)
    return problems.make("power_law_lsq", **base)


@pytest.mark.parametrize("rotate", [False, True])
def test_gd_matches_closed_form_per_eigendirection(rotate):
    """Exact-gradient GD from X0 = 0: in the eigenbasis, column j of (X_t - X*) Q equals
    column j of (X0 - X*) Q times (1 - lr lambda_j)^t."""
    lrs = np.array([0.3, 0.9, 1.5])
    alphas = np.array([0.5, 1.0, 2.0])
    P = make(runs=3, seed=[0, 1, 2], alpha=alphas, rotate=rotate)
    steps = 25
    res = runners.run(P, runners.make("gd", lr=lrs), steps=steps, seed=0)
    j = np.arange(1, 7)
    for b in range(3):
        lam = j ** -alphas[b]
        q = np.eye(6) if not rotate else P.q[b]
        d0 = (0 - P.xstar[b]) @ q
        expect = d0 * (1 - lrs[b] * lam) ** steps
        np.testing.assert_allclose((res.params[0][b] - P.xstar[b]) @ q, expect, atol=1e-12)


def test_gradient_equals_finite_differences():
    P = make(runs=2, seed=[3, 4], rotate=True, label_noise=0.3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6))
    g = P.grad((x,))[0]
    h = 1e-6
    for i, k in [(0, 0), (1, 3), (3, 5), (2, 2)]:
        e = np.zeros_like(x)
        e[:, i, k] = h
        fd = (P.loss((x + e,)) - P.loss((x - e,))) / (2 * h)
        np.testing.assert_allclose(g[:, i, k], fd, rtol=1e-6, atol=1e-9)


def test_loss_is_the_expected_squared_error_monte_carlo():
    """f(X) = 1/2 E||X x - y||^2 with x ~ N(0, Sigma), y = X* x + eps, E||eps||^2 = label_noise^2."""
    sigma = 0.7
    P = make(seed=5, rotate=True, label_noise=sigma, alpha=1.5)
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((1, 4, 6))
    n = 400_000
    z = rng.standard_normal((n, 6))
    cov = P.q[0] @ np.diag(P.eigs[0]) @ P.q[0].T
    xs = z @ np.linalg.cholesky(cov).T
    y = xs @ P.xstar[0].T + sigma / np.sqrt(4) * rng.standard_normal((n, 4))
    sq = 0.5 * ((xs @ x0[0].T - y) ** 2).sum(axis=1)
    mc, se = sq.mean(), sq.std() / np.sqrt(n)
    assert abs(P.loss((x0,))[0] - mc) < 5 * se
    np.testing.assert_allclose(P.loss(P.optimum()[0]), 0.5 * sigma**2, rtol=1e-12)


def test_stochastic_gradient_is_unbiased():
    """The mean of many minibatch gradients converges to the exact gradient: every entry's
    z-score |mean - exact| / standard error stays small, and their mean square is near 1."""
    P = make(seed=6, batch_size=4, noise="minibatch", label_noise=0.5, rotate=True)
    rng = RunRNG(np.array([11]), P.backend)
    x = (np.random.default_rng(2).standard_normal((1, 4, 6)),)
    draws = np.stack([P.stoch_grad(x, P.sample(rng))[0][0] for _ in range(3000)])
    exact = P.grad(x)[0][0]
    z = (draws.mean(axis=0) - exact) / (draws.std(axis=0, ddof=1) / np.sqrt(len(draws)))
    assert np.abs(z).max() < 4.5
    assert 0.5 < (z**2).mean() < 1.6


def test_same_draw_at_two_points_differs_by_the_sampled_hessian():
    """For least squares g(X; xi) - g(Y; xi) = (X - Y) S_xi with S_xi the minibatch covariance,
    linear in X - Y: the label noise cancels, and scaling X - Y scales the difference."""
    P = make(seed=7, batch_size=5, noise="minibatch", label_noise=1.0)
    rng = RunRNG(np.array([0]), P.backend)
    xi = P.sample(rng)
    r = np.random.default_rng(3)
    x, d = r.standard_normal((1, 4, 6)), r.standard_normal((1, 4, 6))
    diff1 = P.stoch_grad((x + d,), xi)[0] - P.stoch_grad((x,), xi)[0]
    diff2 = P.stoch_grad((x + 2 * d,), xi)[0] - P.stoch_grad((x,), xi)[0]
    np.testing.assert_allclose(diff2, 2 * diff1, atol=1e-10)


def test_L_star_is_the_spectral_to_nuclear_smoothness():
    """L_star = sup ||D Sigma||_* / ||D||_op: random directions never exceed it, and the direction
    aligned with the top eigenvectors attains it."""
    P = make(m=3, n=5, alpha=1.3, seed=8, rotate=True)
    c = P.constants()
    sigma = P.q[0] @ np.diag(P.eigs[0]) @ P.q[0].T
    ratio = lambda d: np.linalg.norm(d @ sigma, "nuc") / np.linalg.norm(d, 2)
    rng = np.random.default_rng(4)
    best = max(ratio(rng.standard_normal((3, 5))) for _ in range(2000))
    assert best <= c["L_star"][0] * (1 + 1e-12)
    top = P.q[0][:, np.argsort(P.eigs[0])[::-1][:3]]
    np.testing.assert_allclose(ratio(top.T), c["L_star"][0], rtol=1e-10)
    np.testing.assert_allclose(c["L"][0], np.linalg.eigvalsh(sigma).max(), rtol=1e-12)
    np.testing.assert_allclose(c["mu"][0], np.linalg.eigvalsh(sigma).min(), rtol=1e-9)


def test_target_norm_is_comparable_across_beta_and_seed_fixes_instance():
    P = make(runs=4, seed=[1, 1, 2, 2], beta=[0.0, 2.0, 0.0, 2.0])
    np.testing.assert_allclose(np.linalg.norm(P.xstar, axis=(1, 2)), 1.0)
    # same seed, different beta: same random signs, so the sign pattern agrees
    assert np.array_equal(np.sign(P.xstar[0]), np.sign(P.xstar[1]))
    assert not np.allclose(P.xstar[0], P.xstar[2])


def test_same_seed_same_problem_across_dtypes():
    a = make(seed=9, rotate=True, dtype="float64")
    b = make(seed=9, rotate=True, dtype="float32")
    assert b.xstar.dtype == np.float32
    np.testing.assert_allclose(b.xstar, a.xstar.astype(np.float32), rtol=0, atol=0)


def test_invalid_parameters_name_the_parameter():
    with pytest.raises(problems.ParamError, match="alpha"):
        make(alpha=-1.0)
    with pytest.raises(problems.ParamError, match="batch_size"):
        make(batch_size=2.5)
    with pytest.raises(problems.ParamError, match="unknown parameter"):
        make(gamma=1.0)


def test_mode_errors_follow_gd_closed_form():
    """mode_err_j = ||(X - X*) q_j||^2 decays exactly as (1 - lr lambda_j)^(2t) under exact GD."""
    P = make(alpha=1.0, rotate=True, log_modes=6, n=6)
    lr, steps = 0.8, 7
    res = runners.run(P, runners.make("gd", lr=lr), steps=steps, seed=0, log_points=3)
    lam = np.arange(1, 7) ** -1.0
    modes = sorted(int(k.removeprefix("mode_err_")) for k in res.curves if k.startswith("mode_err_"))
    assert modes[0] == 1 and modes[-1] == 6 and len(modes) >= 4
    for j in modes:
        curve = res.curves[f"mode_err_{j}"][:, 0]
        e0 = (P.xstar[0] @ P.q[0][:, j - 1]) @ (P.xstar[0] @ P.q[0][:, j - 1])
        np.testing.assert_allclose(curve, e0 * (1 - lr * lam[j - 1]) ** (2 * res.steps), rtol=1e-10)


def test_ragged_draws_are_each_run_s_own(backend):
    """RunRNG.normal_ragged: run b's first rows[b] rows are the draws normal((rows[b], n)) gives
    that run alone, call after call; rows past them are 0; with one row count it is normal()."""
    bk = get_backend(backend, "float64")
    seeds, rows = np.array([3, 5, 3, 7]), np.array([2, 6, 6, 0])
    rng = RunRNG(seeds, bk, stream=1)
    alone = {b: RunRNG(seeds[b : b + 1], bk, stream=1) for b in range(4) if rows[b]}
    for _ in range(3):
        got = bk.to_host(rng.normal_ragged(rows, (4,)))
        assert got.shape == (4, 6, 4)
        for b in range(4):
            if rows[b]:
                want = bk.to_host(alone[b].normal((int(rows[b]), 4)))[0]
                np.testing.assert_array_equal(got[b, : rows[b]], want)
            assert not got[b, rows[b] :].any()
    same = RunRNG(seeds, bk, stream=1).normal_ragged(np.full(4, 5), (4,))
    np.testing.assert_array_equal(bk.to_host(same), bk.to_host(RunRNG(seeds, bk, stream=1).normal((5, 4))))


def test_a_run_s_minibatches_do_not_depend_on_its_neighbours_batch_sizes():
    """A run with batch size 4 beside runs of 256 sees the minibatches it sees alone: before,
    every run drew max(batch_size) rows, so its trajectory changed with its job's or lane's
    largest batch size (by O(1)); now only the rounding of the zero-padded sums differs."""
    kw = dict(m=8, n=16, noise="minibatch", label_noise=0.5, rotate=True, dtype="float64")
    mixed = make(runs=4, seed=[0, 1, 0, 1], batch_size=[4, 256, 256, 4], **kw)
    alone = make(runs=2, seed=[0, 1], batch_size=4, **kw)
    zm = mixed.sample(RunRNG(mixed.seeds, mixed.backend, stream=1))["batch"]["z"]
    za = alone.sample(RunRNG(alone.seeds, alone.backend, stream=1))["batch"]["z"]
    np.testing.assert_array_equal(zm[[0, 3], :4], za)
    opt = runners.make("gd", lr=0.05)
    a = runners.run(mixed, opt, steps=30, seed=[0, 1, 0, 1], log_points=4, lanes=1)
    b = runners.run(alone, opt, steps=30, seed=[0, 1], log_points=4, lanes=1)
    np.testing.assert_allclose(a.params[0][[0, 3]], b.params[0], rtol=1e-10, atol=1e-13)
    lanes = runners.run(mixed, opt, steps=30, seed=[0, 1, 0, 1], log_points=4, lanes=2)
    np.testing.assert_allclose(lanes.params[0], a.params[0], rtol=1e-10, atol=1e-13)


def test_student_t_noise_does_not_move_with_a_neighbour_s_batch_size():
    """m = 1: the layer has N = n entries, so the chi-square draw (df, N) had the shape of a data
    draw (r, n); a neighbour with batch size r = df advanced that stream and moved this run's
    noise. The chi-square now draws on a 3-D key of its own."""
    kw = dict(m=1, n=3, noise="student_t", sigma=0.4, df=4, label_noise=0.1, dtype="float64")
    mixed = make(runs=2, seed=[11, 4], batch_size=[2, 4], **kw)
    alone = make(runs=1, seed=[11], batch_size=2, **kw)
    rm, ra = RunRNG(mixed.seeds, mixed.backend, stream=1), RunRNG(alone.seeds, alone.backend, stream=1)
    for _ in range(3):
        xm, xa = mixed.sample(rm), alone.sample(ra)
        np.testing.assert_array_equal(xm["batch"]["z"][0, :2], xa["batch"]["z"][0])
        np.testing.assert_array_equal(xm["add"][0][0], xa["add"][0][0])
