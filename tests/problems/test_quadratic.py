"""quadratic: Hessian structure against dense truth, gradients against finite differences,
ground-truth constants against dense eigendecompositions, L_* against brute force."""

import numpy as np
import pytest

import problems
from problems.params import ParamError


def make(**kw):
    kw.setdefault("dtype", "float64")
    return problems.make("quadratic", **kw)


def dense_hessian(P, b=0):
    """H of run b, formed from the problem's own gradient: column k = grad(X* + E_k)."""
    m, n = P.layer_shapes[0]
    cols = []
    for k in range(m * n):
        e = np.zeros((P.runs, m, n))
        e[:, k // n, k % n] = 1.0
        cols.append(P.grad((P.xstar + e,))[0][b].reshape(-1))
    return np.stack(cols, axis=1)


def pure_power_law(k, alpha):
    return np.arange(1, k + 1, dtype=float) ** -alpha


def brute_lstar(H, m, n, rng, samples=20000):
    """max ||H[D]||_* over the extreme points of the op-norm ball: a dense grid over O(2) for
    2 x 2, random partial isometries otherwise (a lower estimate of the true sup)."""
    if (m, n) == (2, 2):
        t = np.linspace(0, 2 * np.pi, 20001)
        c, s = np.cos(t), np.sin(t)
        rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
        ds = np.concatenate([rot, rot * np.array([1.0, -1.0])[None, None, :]])
    else:
        g = rng.standard_normal((samples, m, n))
        u, _, vt = np.linalg.svd(g, full_matrices=False)
        ds = u @ vt
    hd = (ds.reshape(len(ds), -1) @ H.T).reshape(len(ds), m, n)
    return np.linalg.svd(hd, compute_uv=False).sum(axis=1).max()


VARIANTS = [
    dict(hessian="kronecker", basis="rotated", alpha=1.0, alpha_right=0.5),
    dict(hessian="kronecker", basis="aligned", alpha=2.0, alpha_right=1.0, mu=0.05),
    dict(hessian="low_rank", basis="random", rank=3, alpha=0.5),
    dict(hessian="low_rank", basis="rotated", rank=4, alpha=1.0),
    dict(hessian="low_rank", basis="aligned", rank=2, alpha=0.0, mu=0.1),
    dict(hessian="dense", basis="random", rank=0, alpha=1.0),
    dict(hessian="block", blocks=2, layout="rows", coupling=0.3, alpha=1.0, alpha_right=1.5),
    dict(hessian="block", blocks=4, layout="tiles", coupling=0.0, alpha=0.5, alpha_right=0.5),
]


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: f"{kw['hessian']}-{kw.get('basis', '')}")
def test_gradient_matches_finite_differences(kw):
    P = make(runs=2, seed=[3, 4], m=4, n=6, **kw)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6))
    g = P.grad((x,))[0]
    h = 1e-6
    for _ in range(5):
        v = rng.standard_normal((2, 4, 6))
        fd = (P.loss((x + h * v,)) - P.loss((x - h * v,))) / (2 * h)
        np.testing.assert_allclose(fd, (g * v).sum(axis=(1, 2)), rtol=1e-6, atol=1e-8)
    # the gap is the loss minus f*, and 1/2 <E, H E> of the dense H
    H = dense_hessian(P, 0)
    e = (x - P.xstar)[0].reshape(-1)
    np.testing.assert_allclose(P.gap((x,))[0], 0.5 * e @ H @ e, rtol=1e-10)


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: f"{kw['hessian']}-{kw.get('basis', '')}")
def test_constants_match_dense_eigendecomposition(kw):
    P = make(runs=2, seed=[5, 6], m=4, n=6, **kw)
    c = P.constants()
    for b in range(2):
        H = dense_hessian(P, b)
        np.testing.assert_allclose(H, H.T, atol=1e-12)
        e = np.linalg.eigvalsh(H)
        tol = 1e-9
        np.testing.assert_allclose(c["L"][b], e.max(), rtol=1e-9)
        np.testing.assert_allclose(c["mu_sc"][b], max(e.min(), 0.0) if e.min() > tol else 0.0, atol=1e-9)
        np.testing.assert_allclose(c["mu"][b], e[e > tol].min(), rtol=1e-8)
        assert c["hessian_rank"][b] == np.linalg.matrix_rank(H, tol=tol)
        np.testing.assert_allclose(c["eff_rank"][b], np.trace(H) / e.max(), rtol=1e-9)
        xs = P.xstar[b]
        np.testing.assert_allclose(c["dist0_fro"][b], np.linalg.norm(xs), rtol=1e-12)
        np.testing.assert_allclose(c["dist0_op"][b], np.linalg.norm(xs, 2), rtol=1e-10)
        # X* is the minimizer nearest X0 = 0: it lies in range(H)
        proj = H @ np.linalg.pinv(H, rcond=1e-10) @ xs.reshape(-1)
        np.testing.assert_allclose(proj, xs.reshape(-1), atol=1e-8)
    p = 4
    assert np.all(c["L"] <= c["L_star_low"] * (1 + 1e-9))
    assert np.all(c["L_star_low"] <= c["L_star_high"] * (1 + 1e-9))
    assert np.all(c["L_star_high"] <= p * c["L"] * (1 + 1e-9))


def test_kronecker_is_the_dense_kron_product_with_power_law_factors():
    P = make(runs=1, seed=11, m=3, n=4, hessian="kronecker", basis="rotated", alpha=1.5, alpha_right=0.7, mu=0.2)
    a, c = pure_power_law(3, 1.5), pure_power_law(4, 0.7)
    pa, qc = P.op.p_host[0], P.op.q_host[0]
    np.testing.assert_allclose(pa @ pa.T, np.eye(3), atol=1e-12)
    A, C = pa @ np.diag(a) @ pa.T, qc @ np.diag(c) @ qc.T
    H = dense_hessian(P)
    np.testing.assert_allclose(H, np.kron(A, C) + 0.2 * np.eye(12), atol=1e-12)  # row-major vec(A D C) = (A x C) vec D
    D = np.random.default_rng(1).standard_normal((1, 3, 4))
    np.testing.assert_allclose(P.op.apply(D)[0], A @ D[0] @ C + 0.2 * D[0], atol=1e-12)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(H)), np.sort(np.outer(a, c).ravel() + 0.2), atol=1e-12)


def test_aligned_kronecker_is_diagonal_and_kappa_sets_the_condition_number():
    P = make(
        runs=2,
        seed=0,
        m=3,
        n=5,
        hessian="kronecker",
        basis="aligned",
        alpha=[1.0, 2.0],
        kappa=[10.0, 100.0],
        alpha_right=1.0,
        kappa_right=[0.0, 4.0],
    )
    for b, (ka, kc) in enumerate([(10.0, 5.0), (100.0, 4.0)]):
        H = dense_hessian(P, b)
        np.testing.assert_allclose(H, np.diag(np.diag(H)), atol=1e-14)
        w = np.diag(H).reshape(3, 5)
        a, c = w[:, 0] / w[0, 0], w[0, :] / w[0, 0]
        np.testing.assert_allclose(a[0] / a[-1], ka, rtol=1e-10)
        np.testing.assert_allclose(c[0] / c[-1], kc, rtol=1e-10)  # kappa_right = 0: pure law, condition 5^1
        assert np.all(np.diff(a) < 0) and np.all(np.diff(c) < 0)


@pytest.mark.parametrize("basis", ["random", "aligned", "rotated"])
@pytest.mark.parametrize("hessian", ["low_rank", "dense"])
def test_low_rank_spectrum_rank_and_ridge(hessian, basis):
    ranks = [1, 5, 12]
    P = make(runs=3, seed=2, m=3, n=4, hessian=hessian, basis=basis, rank=ranks, alpha=0.8, mu=[0.0, 0.0, 0.3])
    for b, r in enumerate(ranks):
        H = dense_hessian(P, b)
        e = np.sort(np.linalg.eigvalsh(H))[::-1]
        want = np.concatenate([pure_power_law(r, 0.8), np.zeros(12 - r)]) + (0.3 if b == 2 else 0.0)
        np.testing.assert_allclose(e, want, atol=1e-12)
        if basis == "aligned":
            np.testing.assert_allclose(H, np.diag(np.diag(H)), atol=1e-14)
    assert P.constants()["hessian_rank"].tolist() == [1.0, 5.0, 12.0]


def test_ranks_are_nested_and_the_basis_is_shared_across_the_grid():
    """Runs of one seed with different ranks share eigenvectors (common random numbers)."""
    P = make(runs=2, seed=1, m=3, n=3, hessian="low_rank", basis="random", rank=[2, 4], alpha=0.0)
    H2, H4 = dense_hessian(P, 0), dense_hessian(P, 1)
    np.testing.assert_allclose(H4 @ H2, H2, atol=1e-12)  # range(H2) inside range(H4), both projections


def test_block_mask_and_coupling_is_linear():
    kw = dict(runs=3, seed=7, m=4, n=6, hessian="block", blocks=2, layout="rows", alpha=1.0, alpha_right=0.5)
    P = make(coupling=[0.0, 1.0, 0.25], **kw)
    H0, H1, Hc = (dense_hessian(P, b) for b in range(3))
    rows = np.repeat(np.arange(4), 6)
    blk = rows // 2
    off = blk[:, None] != blk[None, :]
    assert np.abs(H0[off]).max() == 0.0 and np.abs(H0[~off]).max() > 0
    assert np.abs(H1[off]).max() > 1e-3  # coupled
    np.testing.assert_allclose(Hc, 0.75 * H0 + 0.25 * H1, atol=1e-12)
    # block r is A_r (x) C_r with every 2nd left eigenvalue from r and the whole right law, so the
    # block-diagonal and the global operator have the same eigenvalues
    a, c = pure_power_law(4, 1.0), pure_power_law(6, 0.5)
    for r in range(2):
        e = np.sort(np.linalg.eigvalsh(H0[np.ix_(blk == r, blk == r)]))
        np.testing.assert_allclose(e, np.sort(np.outer(a[r::2], c).ravel()), atol=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(H0), np.linalg.eigvalsh(H1), atol=1e-12)


def test_block_tiles_and_cols_layouts():
    P = make(runs=1, seed=7, m=4, n=6, hessian="block", blocks=4, layout="tiles")
    tile = (np.arange(4)[:, None] // 2) * 2 + (np.arange(6)[None, :] // 3)
    t = tile.reshape(-1)
    H = dense_hessian(P)
    assert np.abs(H[t[:, None] != t[None, :]]).max() == 0.0
    want = np.outer(pure_power_law(4, 1.0), pure_power_law(6, 1.0)).ravel()  # defaults alpha = alpha_right = 1
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(H)), np.sort(want), atol=1e-12)
    P = make(runs=1, seed=7, m=4, n=6, hessian="block", blocks=3, layout="cols")
    c = np.tile(np.arange(6) // 2, 4)
    assert np.abs(dense_hessian(P)[c[:, None] != c[None, :]]).max() == 0.0


@pytest.mark.parametrize(
    "kw,shape",
    [
        (dict(hessian="kronecker", basis="rotated", alpha=0.7, alpha_right=1.3, mu=0.1), (2, 2)),
        (dict(hessian="low_rank", basis="random", rank=2, alpha=0.0), (2, 2)),
        (dict(hessian="low_rank", basis="aligned", rank=3, alpha=0.5), (2, 2)),
        (dict(hessian="dense", basis="random", rank=0, alpha=1.0), (2, 3)),
        (dict(hessian="low_rank", basis="rotated", rank=4, alpha=0.3), (3, 2)),
        (dict(hessian="block", blocks=2, layout="rows", coupling=0.5, alpha=0.5, alpha_right=0.5), (2, 2)),
        (dict(hessian="block", blocks=3, layout="cols", coupling=0.2, alpha=1.0, alpha_right=0.0), (2, 3)),
    ],
)
def test_lstar_bounds_bracket_brute_force(kw, shape):
    m, n = shape
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        P = make(runs=1, seed=seed, m=m, n=n, **kw)
        c = P.constants()
        brute = brute_lstar(dense_hessian(P), m, n, rng)
        lo, hi = c["L_star_low"][0], c["L_star_high"][0]
        assert brute <= hi * (1 + 1e-9), (brute, hi)
        assert lo >= brute * (1 - 2e-7), (lo, brute)  # the ascent beats (or matches) brute force
        assert lo <= hi * (1 + 1e-9)
        if c["L_star_exact"][0]:
            np.testing.assert_allclose(lo, hi, rtol=1e-9)
        assert c["L_star"][0] == lo


def test_kronecker_lstar_is_exact_and_matches_brute_force():
    P = make(runs=1, seed=3, m=2, n=2, hessian="kronecker", alpha=1.0, alpha_right=2.0, mu=0.3)
    c = P.constants()
    assert c["L_star_exact"][0] == 1.0
    # sum_k a_k c_k + mu p with a = (1, 1/2), c = (1, 1/4)
    np.testing.assert_allclose(c["L_star"][0], 1 + 0.5 * 0.25 + 2 * 0.3, rtol=1e-12)
    np.testing.assert_allclose(brute_lstar(dense_hessian(P), 2, 2, None), c["L_star"][0], rtol=1e-6)


def test_seed_gives_the_same_instance_on_every_dtype_and_batch():
    kw = dict(m=4, n=5, hessian="low_rank", basis="random", rank=[3, 7])
    P64 = make(runs=2, seed=[9, 9], **kw)
    P32 = problems.make("quadratic", runs=2, seed=[9, 9], dtype="float32", **kw)
    np.testing.assert_allclose(P32.xstar, P64.xstar, rtol=1e-6, atol=1e-7)
    alone = make(runs=1, seed=9, m=4, n=5, hessian="low_rank", basis="random", rank=3)
    np.testing.assert_allclose(alone.xstar[0], P64.xstar[0], atol=1e-12)
    np.testing.assert_allclose(dense_hessian(alone), dense_hessian(P64, 0), atol=1e-12)
    other = make(runs=1, seed=10, m=4, n=5, hessian="low_rank", basis="random", rank=3)
    assert np.abs(other.xstar[0] - alone.xstar[0]).max() > 1e-3


@pytest.mark.parametrize(
    "kw,name",
    [
        (dict(hessian="low_rank", rank=17, m=4, n=4), "rank"),
        (dict(hessian="block", coupling=1.5), "coupling"),
        (dict(hessian="block", coupling=-0.1), "coupling"),
        (dict(noise="gaussian", sigma=-1.0), "sigma"),
        (dict(hessian="dense", m=40, n=40), "hessian"),
        (dict(kappa=0.5), "kappa"),
        (dict(alpha=1e-3, kappa=1e300), "kappa"),
        (dict(alpha=0.0, kappa=10.0), "kappa"),
        (dict(hessian="block", blocks=3, m=4), "blocks"),
        (dict(hessian="block", blocks=3, layout="tiles"), "blocks"),
        (dict(hessian="kronecker", basis="random"), "basis"),
        (dict(hessian="block", basis="aligned"), "basis"),
        (dict(hessian="kronecker", coupling=0.5), "coupling"),
        (dict(hessian="kronecker", rank=3), "rank"),
        (dict(hessian="low_rank", alpha_right=2.0), "alpha_right"),
        (dict(sigma=0.5), "sigma"),
        (dict(noise="minibatch"), "noise"),
        (dict(noise="student_t", df=2), "df"),
        (dict(m=0), "m"),
    ],
)
def test_invalid_parameters_name_the_parameter(kw, name):
    with pytest.raises(ParamError) as err:
        make(runs=2, seed=0, **kw)
    assert str(err.value).startswith(name + ":"), str(err.value)


def test_dense_limit_is_named_in_the_error():
    with pytest.raises(ParamError, match="1024"):
        make(runs=1, seed=0, hessian="dense", m=33, n=32)
