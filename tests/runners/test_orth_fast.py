"""The optimized Newton-Schulz kernel (folded scalars, out= buffers, fused Gram path for
rectangular inputs) against the plain iteration written out below, on every backend (the
``backend`` fixture of tests/conftest.py): float64 to rounding, float32 within what the plain
iteration itself deviates from float64."""

import numpy as np
import pytest

import runners.orth as orth
from problems.backend import get_backend


@pytest.fixture(autouse=True, params=[True, False], ids=["syrk", "gemm_copy"])
def gram_product(request, monkeypatch):
    """Every test runs with both host Gram products (runners.orth.GRAM_SYRK), whichever this
    machine's BLAS kernel would pick."""
    monkeypatch.setattr(orth, "GRAM_SYRK", request.param)
    return request.param


CUBIC = ((1.5, -0.5, 0.0),) * 3 + ((3.4445, -4.7750, 2.0315),) * 2  # c = 0 steps take their own branch


def plain_ns(u, coeffs, norm_scale=1.0):
    """The textbook iteration (float64, NumPy): X <- a X + (b A + c A^2) X, A = X X^T."""
    x = np.asarray(u, np.float64)
    tall = x.shape[-2] > x.shape[-1]
    x = x.transpose(0, 2, 1) if tall else x
    nrm = np.sqrt((x * x).sum(axis=(-2, -1), keepdims=True)) * norm_scale
    x = x / np.where(nrm > 0, nrm, 1)
    for a, b, c in coeffs:
        g = x @ x.transpose(0, 2, 1)
        x = a * x + (b * g + c * g @ g) @ x
    return x.transpose(0, 2, 1) if tall else x


def conditioned(rng, batch, m, n, cond):
    """Random matrices with singular values geometrically spaced from 1 down to 1/cond."""
    k = min(m, n)
    u = np.linalg.qr(rng.standard_normal((batch, m, k)))[0]
    v = np.linalg.qr(rng.standard_normal((batch, n, k)))[0]
    return (u * np.geomspace(1.0, 1.0 / cond, k)) @ v.transpose(0, 2, 1)


# (m, n): square; tall and wide at 4:1 (fused Gram path); 2:1 (direct path); odd sizes
SHAPES = [(24, 24), (48, 12), (12, 48), (20, 40), (37, 5), (5, 37)]


@pytest.mark.parametrize("dtype,atol", [("float64", 1e-12), ("float32", 3e-5)])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    "coeffs,scale",
    [(orth.KELLER, 1.0), (orth.POLAR_EXPRESS, 1.02), (CUBIC, 1.0)],
    ids=["keller", "polar_express", "cubic_then_quintic"],
)
def test_newton_schulz_equals_plain_iteration(backend, dtype, atol, shape, coeffs, scale):
    bk = get_backend(backend, dtype)
    rng = np.random.default_rng(sum(shape))
    u = np.concatenate([conditioned(rng, 3, *shape, cond) for cond in (1.0, 1e2, 1e4)])
    out = bk.to_host(orth.newton_schulz(bk.asarray(u), coeffs, norm_scale=scale))
    assert out.shape == u.shape and out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, plain_ns(u, coeffs, scale), rtol=0, atol=atol)


@pytest.mark.parametrize("shape", [(40, 10), (10, 40), (16, 16)])
def test_fused_gram_path_equals_direct_path(shape, monkeypatch):
    rng = np.random.default_rng(5)
    u = conditioned(rng, 4, *shape, 1e3)
    monkeypatch.setattr(orth, "GRAM_FUSE_RATIO", 1.0)  # every shape fused
    fused = orth.newton_schulz(u, orth.KELLER)
    monkeypatch.setattr(orth, "GRAM_FUSE_RATIO", None)  # never
    direct = orth.newton_schulz(u, orth.KELLER)
    np.testing.assert_allclose(fused, direct, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ratio", [1.0, None])
def test_zero_and_partly_zero_batches(ratio, monkeypatch):
    monkeypatch.setattr(orth, "GRAM_FUSE_RATIO", ratio)
    u = np.random.default_rng(6).standard_normal((3, 8, 20)).astype(np.float32)
    u[1] = 0
    out = orth.newton_schulz(u, orth.KELLER)
    assert np.all(out[1] == 0) and np.all(np.isfinite(out))
    np.testing.assert_allclose(out[[0, 2]], plain_ns(u[[0, 2]], orth.KELLER), atol=3e-5)


def test_zero_steps_is_the_normalized_input():
    u = np.random.default_rng(7).standard_normal((2, 6, 9))
    np.testing.assert_allclose(orth.newton_schulz(u, ()), u / np.linalg.norm(u, axis=(1, 2), keepdims=True), atol=1e-14)


def test_non_contiguous_input_and_batch_invariance():
    """A strided view gives the same result as a contiguous copy, and each matrix's result does
    not depend on the batch it sits in (bit for bit)."""
    u = np.random.default_rng(8).standard_normal((6, 30, 10)).astype(np.float32)
    view = u[::2]
    together = orth.newton_schulz(view, orth.KELLER)
    np.testing.assert_array_equal(together, orth.newton_schulz(np.ascontiguousarray(view), orth.KELLER))
    for b in range(3):
        np.testing.assert_array_equal(together[b], orth.newton_schulz(view[b : b + 1], orth.KELLER)[0])


@pytest.mark.parametrize("kernel,syrk", [("Haswell", True), ("SkylakeX", False), ("mkl", False), ("", False)])
def test_gram_product_follows_the_detected_kernel(kernel, syrk, monkeypatch):
    monkeypatch.setattr(orth, "GRAM_SYRK", None)
    monkeypatch.setattr(orth, "_DETECTED", {})
    monkeypatch.setattr(orth, "blas_kernel", lambda: kernel)
    assert orth.gram_product(np) == ("syrk" if syrk else "copy")
    assert orth.kernel_levers()["gram_product"] == ("syrk" if syrk else "gemm on a scaled transposed copy")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_safe_scaled_rescales_only_the_runs_out_of_range(dtype):
    """Runs whose norm cannot under- or overflow are passed through untouched (no rescaling pass);
    a tiny, a huge and a non-finite run in the same batch get the max-abs scaling, each on its own;
    and orthogonalize gives the same directions either way (every kernel is scale-invariant)."""
    rng = np.random.default_rng(3)
    u = rng.standard_normal((5, 6, 9)).astype(dtype)
    fi = np.finfo(dtype)
    u[1] *= dtype(fi.tiny)  # mean square far below tiny / eps
    u[2] *= dtype(np.sqrt(fi.max) / 4)  # squared norm above max * eps
    u[3, 0, 0] = np.inf
    with np.errstate(invalid="ignore"):  # inf / inf in the non-finite run: NaN, as the loop expects
        got = orth.safe_scaled(u)
        ref = orth.max_abs_normalize(u)
    for b in (0, 4):
        assert np.array_equal(got[b], u[b])  # untouched, bit for bit
    for b in (1, 2, 3):
        np.testing.assert_array_equal(got[b], ref[b])
    assert np.abs(got[1:3]).max() == 1.0
    for kernel in ("svd", "ns_keller"):
        via_ref = orth.resolve(kernel)(orth.max_abs_normalize(u[[0, 1, 2, 4]]))
        np.testing.assert_allclose(orth.orthogonalize(u[[0, 1, 2, 4]], kernel), via_ref, atol=50 * fi.eps)
