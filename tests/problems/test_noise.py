"""The oracle-noise layer: moments within confidence intervals, the same draw at two points,
minibatch unbiasedness and the calibration of sigma at the optimum."""

import numpy as np
import pytest

import problems
from problems.backend import RunRNG, get_backend

BK = get_backend("numpy", "float64")


def draws(P, x, k, seed=0):
    """k oracle draws at x for every run: (k, B, ...) arrays of g - grad f, layer by layer."""
    rng = RunRNG(np.arange(P.runs) + 1000 * seed, BK, stream=1)
    exact = P.grad(x)
    out = [[] for _ in exact]
    for _ in range(k):
        g = P.stoch_grad(x, P.sample(rng))
        for i, (gi, ei) in enumerate(zip(g, exact)):
            out[i].append(gi - ei)
    return [np.stack(o) for o in out]


def sq_norm(devs):
    return sum((d**2).sum(axis=(-2, -1)) for d in devs)  # (k, B)


def within_ci(samples, target, z=5.0):
    """|mean - target| <= z standard errors (samples: 1-D)."""
    se = samples.std(ddof=1) / np.sqrt(len(samples))
    return abs(samples.mean() - target) <= z * se + 1e-12, (samples.mean(), target, se)


CASES = [
    ("quadratic", dict(m=3, n=5, hessian="kronecker")),
    ("pl_sine", dict(m=4, n=2, amplitude=2.0)),
    ("linear_net", dict(m=3, n=4, hidden=2)),  # two layers: sigma^2 is the total over both
]


@pytest.mark.parametrize("noise", ["gaussian", "student_t"])
@pytest.mark.parametrize("kind,kw", CASES, ids=[c[0] for c in CASES])
def test_additive_noise_moments(kind, kw, noise):
    sigma = np.array([0.5, 2.0, 0.0, 1.0])
    P = problems.make(kind, runs=4, seed=[1, 2, 3, 4], backend=BK, noise=noise, sigma=sigma, df=5, **kw)
    x = tuple(np.random.default_rng(0).standard_normal((4, *s)) for s in P.layer_shapes)
    devs = draws(P, x, 600)
    sq = sq_norm(devs)
    for b in range(4):
        if sigma[b] == 0:
            assert np.all(sq[:, b] == 0)
            continue
        ok, info = within_ci(sq[:, b], sigma[b] ** 2)
        assert ok, info
        flat = np.concatenate([d[:, b].reshape(600, -1) for d in devs], axis=1)
        for j in range(flat.shape[1]):  # mean of every entry -> 0
            ok, info = within_ci(flat[:, j], 0.0)
            assert ok, (j, info)
    if noise == "student_t":  # heavy tails: excess kurtosis of t_5 is 6, of a normal 0
        z = np.concatenate([d[:, 1].reshape(-1) for d in devs])
        z = z / z.std()
        assert (z**4).mean() - 3 > 1.0


def test_student_t_entries_have_unit_variance_and_t_tails():
    P = problems.make("quadratic", runs=1, seed=0, backend=BK, m=10, n=10, noise="student_t", sigma=10.0, df=4)
    x = (np.zeros((1, 10, 10)),)
    z = draws(P, x, 2000)[0].reshape(-1)  # entries: sigma / sqrt(N) = 1 times unit-variance t_4
    assert abs(z.var() - 1.0) < 0.15
    # P(|z| > 3) for unit-variance t_4 (= P(|t_4| > 3 sqrt 2)) matches scipy; a normal's is ~10x smaller
    from scipy import stats

    thr = 3.0
    emp = (np.abs(z) > thr).mean()
    want = 2 * stats.t.sf(thr * np.sqrt(4 / 2), df=4)
    assert abs(emp - want) < 5 * np.sqrt(want / len(z)) and emp > 5 * 2 * stats.norm.sf(thr) * 0.8


@pytest.mark.parametrize(
    "kind,kw",
    CASES + [("two_sided_lsq", dict(m=3, n=4, batch_size=2)), ("power_law_lsq", dict(m=3, n=4, batch_size=2))],
    ids=[c[0] for c in CASES] + ["two_sided_lsq", "power_law_lsq"],
)
def test_same_draw_at_two_points_adds_the_same_noise(kind, kw):
    """For additive noise, g(X1; xi) - g(X2; xi) = grad f(X1) - grad f(X2) (minibatches aside)."""
    P = problems.make(kind, runs=2, seed=[0, 1], backend=BK, noise="gaussian", sigma=3.0, **kw)
    r = np.random.default_rng(1)
    x1 = tuple(r.standard_normal((2, *s)) for s in P.layer_shapes)
    x2 = tuple(r.standard_normal((2, *s)) for s in P.layer_shapes)
    xi = P.sample(RunRNG(np.array([0, 1]), BK))
    g1, g2 = P.stoch_grad(x1, xi), P.stoch_grad(x2, xi)
    if xi["batch"] is None:
        e1, e2 = P.grad(x1), P.grad(x2)
    else:  # the minibatch gradients without the additive part
        e1, e2 = P.batch_grad(x1, xi["batch"]), P.batch_grad(x2, xi["batch"])
    for a, b, c, d in zip(g1, g2, e1, e2):
        np.testing.assert_allclose(a - b, c - d, atol=1e-10)
        assert np.abs(a - c).max() > 1e-3  # noise is really there


MB = [
    ("two_sided_lsq", dict(m=3, n=4, alpha_in=1.0, alpha_out=0.5, beta=0.5, rotate=True)),
    ("power_law_lsq", dict(m=3, n=4, alpha=1.0, beta=0.5, rotate=True)),
    ("linear_net", dict(m=3, n=4, hidden=3, alpha=0.5, teacher_rank=2)),
]


@pytest.mark.parametrize("kind,kw", MB, ids=[c[0] for c in MB])
def test_minibatch_is_unbiased_and_sigma_is_the_std_at_the_optimum(kind, kw):
    sigma = np.array([0.7, 0.0, 1.5])
    P = problems.make(
        kind,
        runs=3,
        seed=[5, 6, 7],
        backend=BK,
        noise="minibatch",
        sigma=sigma,
        batch_size=4,
        label_noise=[0.0, 0.3, 0.0],
        **kw,
    )
    k = 1500
    # unbiased away from the optimum
    x = tuple(np.random.default_rng(2).standard_normal((3, *s)) for s in P.layer_shapes)
    devs = draws(P, x, k)
    for d in devs:
        flat = d.reshape(k, 3, -1)
        for b in range(3):
            for j in range(flat.shape[2]):
                ok, info = within_ci(flat[:, b, j], 0.0)
                assert ok, (b, j, info)
    # variance at X*: sigma^2 (+ the label_noise part), as reported in noise_var_opt
    xs = P.optimum()[0]
    sq = sq_norm(draws(P, xs, k, seed=1))
    c = P.constants()["noise_var_opt"]
    for b in range(3):
        ok, info = within_ci(sq[:, b], c[b])
        assert ok, (b, info)
    np.testing.assert_allclose(c[[0, 2]], sigma[[0, 2]] ** 2, rtol=1e-12)
    assert c[1] > 0  # label noise alone makes the oracle noisy at X*


def test_linear_net_model_variance_when_misspecified():
    """hidden < teacher rank: the minibatch is noisy at X* even without label noise; the exact
    (Isserlis) formula in noise_var_opt matches the empirical second moment."""
    P = problems.make(
        "linear_net",
        runs=2,
        seed=[1, 2],
        backend=BK,
        m=4,
        n=4,
        hidden=1,
        alpha=0.5,
        beta=0.0,
        noise="minibatch",
        batch_size=3,
    )
    c = P.constants()["noise_var_opt"]
    sq = sq_norm(draws(P, P.optimum()[0], 4000))
    for b in range(2):
        ok, info = within_ci(sq[:, b], c[b])
        assert ok, info
        assert c[b] > 1e-3


def test_minibatch_difference_does_not_see_the_label_noise():
    """MVR evaluates one draw at two points: the label noise cancels in the difference."""
    kw = dict(runs=2, seed=[0, 1], backend=BK, m=3, n=4, noise="minibatch", batch_size=5)
    P0 = problems.make("two_sided_lsq", **kw)
    P1 = problems.make("two_sided_lsq", label_noise=2.0, **kw)
    r = np.random.default_rng(0)
    x1, x2 = (r.standard_normal((2, 3, 4)),), (r.standard_normal((2, 3, 4)),)
    xi = P0.sample(RunRNG(np.array([0, 1]), BK))
    d0 = P0.stoch_grad(x1, xi)[0] - P0.stoch_grad(x2, xi)[0]
    d1 = P1.stoch_grad(x1, xi)[0] - P1.stoch_grad(x2, xi)[0]
    np.testing.assert_allclose(d0, d1, atol=1e-10)
    assert np.abs(P1.stoch_grad(x1, xi)[0] - P0.stoch_grad(x1, xi)[0]).max() > 1e-3


def test_exact_oracle_when_noise_is_none():
    P = problems.make("quadratic", runs=2, seed=0, backend=BK)
    assert P.sample(RunRNG(np.array([0, 0]), BK)) is None
