"""Orthogonalization kernels against scipy's polar decomposition and the documented NS band."""

import numpy as np
import pytest
import scipy.linalg

from runners.orth import ORTH


def _random(rng, m, n, rank=None):
    if rank is None:
        return rng.standard_normal((m, n))
    return rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n))


@pytest.mark.parametrize("shape", [(6, 6), (9, 4), (4, 9)], ids=["square", "tall", "wide"])
def test_svd_polar_equals_scipy_full_rank(shape):
    rng = np.random.default_rng(0)
    batch = np.stack([_random(rng, *shape) for _ in range(5)])
    out = ORTH["svd"](batch)
    for a, o in zip(batch, out):
        u, _ = scipy.linalg.polar(a)  # a = u p, u with orthonormal columns (tall) or rows (wide)
        np.testing.assert_allclose(o, u, atol=1e-10)


@pytest.mark.parametrize("shape,rank", [((7, 7), 3), ((9, 5), 2), ((5, 9), 4)])
def test_svd_polar_rank_deficient_is_scipy_polar_on_the_row_space(shape, rank):
    """For rank-deficient A the polar factor is unique only on A's row space: there it must equal
    scipy's u; off it (the null space) we return zero, so ours = u @ P with P = pinv(A) A."""
    rng = np.random.default_rng(1)
    batch = np.stack([_random(rng, *shape, rank=rank) for _ in range(4)])
    out = ORTH["svd"](batch)
    for a, o in zip(batch, out):
        u, _ = scipy.linalg.polar(a)
        proj = np.linalg.pinv(a) @ a
        np.testing.assert_allclose(o, u @ proj, atol=1e-9)
        assert np.linalg.matrix_rank(o, tol=1e-8) == rank


@pytest.mark.parametrize("name", sorted(ORTH))
def test_zero_maps_to_zero(name):
    z = np.zeros((3, 5, 4), dtype=np.float32)
    out = ORTH[name](z)
    assert np.all(out == 0) and out.shape == z.shape


@pytest.mark.parametrize("shape", [(8, 16), (16, 8), (12, 12)])
def test_ns_keller_band_and_singular_vectors(shape):
    """Keller's quintic NS5 maps singular values into roughly [0.7, 1.2] (PAPERS.md) for inputs
    whose normalized singular values are not tiny, and keeps the singular vectors (it is an odd
    matrix polynomial): U^T O V must be diagonal for the input's own SVD U S V^T."""
    rng = np.random.default_rng(2)
    m, n = shape
    k = min(m, n)
    mats = []
    for cond in (1.0, 10.0, 100.0):
        u = np.linalg.qr(rng.standard_normal((m, k)))[0]
        v = np.linalg.qr(rng.standard_normal((n, k)))[0]
        s = np.geomspace(1.0, 1.0 / cond, k)
        mats.append((u * s) @ v.T)
    batch = np.stack(mats)
    out = ORTH["ns_keller"](batch)
    for a, o in zip(batch, out):
        w, s, vt = np.linalg.svd(a, full_matrices=False)
        d = w.T @ o @ vt.T
        offdiag = d - np.diag(np.diag(d))
        assert np.abs(offdiag).max() < 1e-8
        sv = np.linalg.svd(o, compute_uv=False)
        assert sv.min() > 0.65 and sv.max() < 1.25, (sv.min(), sv.max())


def test_ns_runs_on_the_smaller_gram_side_same_answer_transposed():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 6, 15))
    np.testing.assert_allclose(
        ORTH["ns_keller"](a), ORTH["ns_keller"](a.transpose(0, 2, 1)).transpose(0, 2, 1), atol=1e-12
    )


def test_tiny_input_is_not_shrunk():
    """No additive eps: a matrix scaled by 1e-20 orthogonalizes to the same result (float64)."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 5, 7))
    for name in ("ns_keller", "svd"):
        np.testing.assert_allclose(ORTH[name](a * 1e-20), ORTH[name](a), rtol=1e-9, atol=1e-12)


def test_non_finite_run_gives_nan_and_leaves_the_batch_alone():
    """LAPACK's SVD raises on NaN/inf; one diverging run must not crash its batch."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 4, 6))
    bad = a.copy()
    bad[1, 2, 3] = np.nan
    bad[2, 0, 0] = np.inf
    out = ORTH["svd"](bad)
    np.testing.assert_array_equal(out[0], ORTH["svd"](a[:1])[0])
    assert np.isnan(out[1]).all() and np.isnan(out[2]).all()


def test_spectral_sd_step_with_a_non_finite_run_does_not_crash():
    """spectral_sd takes the nuclear norm (an SVD) of the momentum: a run whose momentum has
    overflowed must give a non-finite update for itself only, not raise for the batch."""
    import problems
    import runners
    from runners.loop import Oracle

    P = problems.make("power_law_lsq", runs=2, seed=0, m=4, n=6, dtype="float64")
    opt = runners.make("spectral_sd", lr=1e-2)
    hp = opt.bind(2, P.backend)
    params = P.init(None)
    state = opt.init(params, hp, np)
    state["m"][0][1, 0, 0] = np.inf
    with np.errstate(invalid="ignore"):  # inf / inf in that run's rescaling, as the run loop allows
        new, _ = opt.step(params, state, Oracle(P, None), 1, hp)
    assert np.isfinite(new[0][0]).all() and not np.isfinite(new[0][1]).all()


def test_every_batched_lapack_call_in_runners_goes_through_batched_linalg():
    """A direct xp.linalg.svd(...) / eigh(...) / ... call on the batch in runners/ would run on the library's
    BLAS threads, whose count changes LAPACK's bits at larger sizes and so would make a run's
    result depend on its lane (problems.backend.batched_linalg runs them on one thread)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "runners"
    direct = re.compile(r"\bxp\.linalg\.(svd|svdvals|eigh|eigvalsh|eig|qr|cholesky|solve|inv|lstsq|pinv)\s*\(")
    found = [
        f"{path.relative_to(root.parent)}:{i}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if direct.search(line)
    ]
    assert not found, found
