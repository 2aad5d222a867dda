"""two_sided_lsq, linear_net, pl_sine and the extended power_law_lsq: gradients against finite
differences, ground truth against dense / brute-force / optimizer-found truth."""

import numpy as np
import pytest
from scipy.optimize import minimize

import problems
from problems.params import ParamError


def fd_check(P, x, rtol=1e-6):
    g = P.grad(x)
    rng = np.random.default_rng(0)
    h = 1e-6
    for _ in range(4):
        v = tuple(rng.standard_normal(xi.shape) for xi in x)
        plus = tuple(a + h * b for a, b in zip(x, v))
        minus = tuple(a - h * b for a, b in zip(x, v))
        fd = (P.loss(plus) - P.loss(minus)) / (2 * h)
        an = sum((gi * vi).sum(axis=(1, 2)) for gi, vi in zip(g, v))
        np.testing.assert_allclose(fd, an, rtol=rtol, atol=1e-8)


def random_point(P, seed=0, scale=1.0):
    r = np.random.default_rng(seed)
    return tuple(scale * r.standard_normal((P.runs, *s)) for s in P.layer_shapes)


# --- two_sided_lsq ------------------------------------------------------------------------------
def test_two_sided_population_loss_and_gradient():
    P = problems.make(
        "two_sided_lsq",
        runs=2,
        seed=[1, 2],
        dtype="float64",
        m=3,
        n=4,
        alpha_in=1.0,
        alpha_out=0.5,
        beta=1.0,
        rotate=True,
        label_noise=0.3,
    )
    x = random_point(P)
    fd_check(P, x)
    # independent: Monte Carlo of 1/2 E (x_out^T W x_in - y)^2 with the covariances built here
    r = np.random.default_rng(3)
    k = 400_000
    qi, qo = P.op.q_host[0], P.op.p_host[0]
    si = qi @ np.diag(np.arange(1, 5.0) ** -1.0) @ qi.T
    so = qo @ np.diag(np.arange(1, 4.0) ** -0.5) @ qo.T
    xin = r.standard_normal((k, 4)) @ np.linalg.cholesky(si).T
    xout = r.standard_normal((k, 3)) @ np.linalg.cholesky(so).T
    y = np.einsum("ki,ij,kj->k", xout, P.wstar_host[0], xin) + 0.3 * r.standard_normal(k)
    res = np.einsum("ki,ij,kj->k", xout, x[0][0], xin) - y
    mc = 0.5 * (res**2)
    assert abs(mc.mean() - P.loss(x)[0]) < 5 * mc.std() / np.sqrt(k)
    np.testing.assert_allclose(P.grad(x)[0][0], so @ (x[0][0] - P.wstar_host[0]) @ si, atol=1e-12)
    np.testing.assert_allclose(P.optimum()[1], 0.5 * 0.09)


def test_two_sided_constants_and_spectra():
    P = problems.make("two_sided_lsq", runs=2, seed=0, dtype="float64", m=2, n=3, alpha_in=[0.5, 2.0], alpha_out=1.0)
    c, s = P.constants(), P.spectra()
    for b, ai in enumerate([0.5, 2.0]):
        lin, lout = np.arange(1, 4.0) ** -ai, np.arange(1, 3.0) ** -1.0
        np.testing.assert_allclose(s["in"][b], lin)
        np.testing.assert_allclose(s["out"][b], lout)
        H = np.kron(np.diag(lout), np.diag(lin))
        np.testing.assert_allclose(c["L"][b], 1.0)
        np.testing.assert_allclose(c["mu"][b], lin[-1] * lout[-1])
        np.testing.assert_allclose(c["eff_rank"][b], np.trace(H))
        np.testing.assert_allclose(c["L_star"][b], lout[0] * lin[0] + lout[1] * lin[1])
    assert s["target_in"].shape == (2, 3) and s["target_out"].shape == (2, 2)


# --- power_law_lsq --------------------------------------------------------------------------------
def test_power_law_lsq_constants_and_gradient():
    P = problems.make(
        "power_law_lsq",
        runs=2,
        seed=[0, 1],
        dtype="float64",
        m=3,
        n=5,
        alpha=[0.0, 1.0],
        rotate=True,
        noise="gaussian",
        sigma=0.2,
        label_noise=0.5,
    )
    fd_check(P, random_point(P))
    c = P.constants()
    lam = np.arange(1, 6.0) ** -1.0
    np.testing.assert_allclose(c["L_star"], [3.0, lam[:3].sum()])
    np.testing.assert_allclose(c["f_star"], 0.5 * 0.25)
    np.testing.assert_allclose(c["noise_var_opt"], 0.04)  # exact population gradient + additive noise
    np.testing.assert_allclose(P.spectra()["cov"][1], lam)


def test_power_law_lsq_minibatch_requires_noise_minibatch():
    with pytest.raises(ParamError, match="^batch_size:"):
        problems.make("power_law_lsq", runs=1, seed=0, batch_size=4)
    with pytest.raises(ParamError, match="^batch_size:"):
        problems.make("power_law_lsq", runs=2, seed=0, batch_size=[0, 4], noise="minibatch")


# --- linear_net -------------------------------------------------------------------------------------
def test_linear_net_gradient_and_hessian():
    P = problems.make(
        "linear_net", runs=2, seed=[0, 1], dtype="float64", m=3, n=4, hidden=2, alpha=0.7, teacher_rank=[0, 2]
    )
    x = random_point(P)
    fd_check(P, x)
    # Hessian-vector products = finite differences of the gradient (away from the optimum)
    from problems.linear_net import hvp

    w1, w2 = x[0][0], x[1][0]
    d = w2 @ w1 - P.mstar_host[0]
    v1, v2 = np.random.default_rng(5).standard_normal((2, 4)), np.random.default_rng(6).standard_normal((3, 2))
    a1, a2 = hvp(np, w1, w2, d, P.lam[0][None, :], v1, v2)
    h = 1e-6
    gp = P.grad((x[0] + h * np.stack([v1, v1]), x[1] + h * np.stack([v2, v2])))
    gm = P.grad((x[0] - h * np.stack([v1, v1]), x[1] - h * np.stack([v2, v2])))
    np.testing.assert_allclose((gp[0][0] - gm[0][0]) / (2 * h), a1, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose((gp[1][0] - gm[1][0]) / (2 * h), a2, rtol=1e-6, atol=1e-8)


def dense_fd_hessian(P, b, point):
    """Hessian by central differences of the gradient, (P, P)."""
    shapes = P.layer_shapes
    sizes = [a * c for a, c in shapes]
    n = sum(sizes)
    h = 1e-5
    cols = []
    for k in range(n):
        e = np.zeros(n)
        e[k] = h
        parts = np.split(e, np.cumsum(sizes)[:-1])
        dx = tuple(np.broadcast_to(p.reshape(s), (P.runs, *s)) for p, s in zip(parts, shapes))
        gp = P.grad(tuple(a + d for a, d in zip(point, dx)))
        gm = P.grad(tuple(a - d for a, d in zip(point, dx)))
        cols.append(np.concatenate([((a - c) / (2 * h))[b].reshape(-1) for a, c in zip(gp, gm)]))
    H = np.stack(cols, axis=1)
    return 0.5 * (H + H.T)


@pytest.mark.parametrize("hidden,rank", [(3, 2), (2, 3), (3, 3)])
def test_linear_net_optimum_and_constants(hidden, rank):
    P = problems.make(
        "linear_net", runs=1, seed=4, dtype="float64", m=3, n=4, hidden=hidden, teacher_rank=rank, alpha=0.5, beta=0.5
    )
    xs, fstar = P.optimum()
    np.testing.assert_allclose(P.loss(xs), fstar, atol=1e-12)
    for g in P.grad(xs):
        np.testing.assert_allclose(g, 0.0, atol=1e-10)
    # f* is the global minimum: no local search from random starts does better
    flat = lambda v: (v[: hidden * 4].reshape(1, hidden, 4), v[hidden * 4 :].reshape(1, 3, hidden))  # noqa: E731
    best = min(
        minimize(
            lambda v: P.loss(flat(v))[0],
            np.random.default_rng(s).standard_normal(hidden * 7),
            jac=lambda v: np.concatenate([g.reshape(-1) for g in P.grad(flat(v))]),
            method="BFGS",
            options={"gtol": 1e-10},
        ).fun
        for s in range(4)
    )
    np.testing.assert_allclose(best, fstar[0], atol=1e-8)
    c = P.constants()
    H = dense_fd_hessian(P, 0, xs)
    e = np.linalg.eigvalsh(H)
    np.testing.assert_allclose(c["L"][0], e.max(), rtol=1e-5)
    assert c["hessian_rank"][0] == (e > 1e-6 * e.max()).sum()
    np.testing.assert_allclose(c["eff_rank"][0], np.trace(H) / e.max(), rtol=1e-5)
    if rank <= hidden:  # realizable: r (m + n - r)
        assert c["hessian_rank"][0] == rank * (3 + 4 - rank)
    x0 = P.init(None)
    np.testing.assert_allclose(c["gap0"], P.gap(x0), rtol=1e-10)
    assert np.isnan(c["L_star"][0])


def test_linear_net_rejects_teacher_rank_above_min_dim():
    with pytest.raises(ParamError, match="^teacher_rank:"):
        problems.make("linear_net", runs=1, seed=0, m=3, n=4, teacher_rank=4)


def test_linear_net_overflow_is_caught_naming_alpha():
    with pytest.raises(ParamError, match="^alpha:"):
        problems.make("linear_net", runs=1, seed=0, m=4, n=16, alpha=300.0)  # S^(-1/2) = inf


# --- pl_sine ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("basis", ["aligned", "rotated"])
def test_pl_sine_gradient_pl_inequality_and_constants(basis):
    a = np.array([0.0, 1.0, 3.0, 4.0])
    P = problems.make("pl_sine", runs=4, seed=[0, 1, 2, 3], dtype="float64", m=3, n=2, amplitude=a, basis=basis)
    fd_check(P, random_point(P, scale=2.0))
    c = P.constants()
    # independent brute force of inf phi'^2 / (2 phi) on a different grid
    z = np.linspace(1e-3, 30, 3_000_001)
    for b, ab in enumerate(a):
        r = (2 * z + ab * np.sin(2 * z)) ** 2 / (2 * (z * z + ab * np.sin(z) ** 2))
        np.testing.assert_allclose(c["mu"][b], r.min(), rtol=1e-6)
        assert c["mu"][b] <= r.min() * (1 + 1e-12)
    assert c["mu"][2] >= 1 / 32  # Karimi et al.'s bound for a = 3 holds (it is not tight)
    # PL at random points: 1/2 ||grad||^2 >= mu (f - f*)
    for s in range(5):
        x = tuple(P.xstar + 3 * np.random.default_rng(s).standard_normal(P.xstar.shape) for _ in range(1))
        g = P.grad(x)[0]
        assert np.all(0.5 * (g * g).sum(axis=(1, 2)) >= c["mu"] * P.loss(x) * (1 - 1e-12))
    np.testing.assert_allclose(c["L"], 2 + 2 * a)
    np.testing.assert_allclose(c["L_star"], 2 * (2 + 2 * a))
    np.testing.assert_allclose(c["dist0_fro"], 2.0 * np.sqrt(6))


def test_pl_sine_is_tight_along_one_entry():
    """The PL ratio is attained: moving one entry of Z to the minimizing z gives ratio = mu."""
    P = problems.make("pl_sine", runs=1, seed=0, dtype="float64", m=2, n=2, amplitude=3.0, basis="aligned")
    mu = P.constants()["mu"][0]
    zs = np.linspace(0.01, 5, 50001)
    x = P.xstar + np.zeros((len(zs), 2, 2))
    x[:, 0, 0] += zs
    P2 = problems.make("pl_sine", runs=len(zs), seed=0, dtype="float64", m=2, n=2, amplitude=3.0, basis="aligned")
    g = P2.grad((x,))[0]
    ratio = 0.5 * (g * g).sum(axis=(1, 2)) / P2.loss((x,))
    np.testing.assert_allclose(ratio.min(), mu, rtol=1e-6)
