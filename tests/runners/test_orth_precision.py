"""orth_precision (runners.precision, runners.orth.orthogonalize) and the realized orthogonality
error (runners.orth.orth_error, curves.csv orth_err): the emulated formats against direct
low-precision implementations (ml_dtypes bfloat16 and NumPy float16 arrays, products summed
element by element in float32), and the size of the error each format leaves."""

import ml_dtypes
import numpy as np
import pytest

import problems
import runners
from runners import orth
from runners import precision as P

F32 = np.float32
BF16 = ml_dtypes.bfloat16


def _round_frexp(x, bits):
    """Round to ``bits`` explicit mantissa bits by float64 arithmetic (normal numbers only):
    m 2^e with m in [0.5, 1) -> rint(m 2^(bits+1)) 2^(e-bits-1), rint being ties-to-even."""
    m, e = np.frexp(x.astype(np.float64))
    return (np.rint(m * 2.0 ** (bits + 1)) * 2.0 ** (e - bits - 1)).astype(F32)


def test_mantissa_rounding_is_the_bfloat16_cast_bit_for_bit():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 200000, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([bits.view(F32), np.array([0, -0.0, np.inf, -np.inf, np.nan, 3.4e38, 1e-45], F32)])
    got = P.round_mantissa(x, 7)
    with np.errstate(invalid="ignore"):  # the NaN inputs cast to NaN, as intended
        want = x.astype(BF16).astype(F32)
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), x[~same][:5]


@pytest.mark.parametrize("bits", [10, 7])
def test_mantissa_rounding_matches_float64_rounding_on_normal_numbers(bits):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(100000) * 10.0 ** rng.uniform(-30, 30, 100000)).astype(F32)
    ties = (np.arange(1, 2001, dtype=F32) + F32(0.5)) * F32(2.0**-bits)  # exact halfway cases
    x = np.concatenate([x, ties, -ties])
    np.testing.assert_array_equal(P.round_mantissa(x, bits), _round_frexp(x, bits))


# --- a direct low-precision Newton-Schulz, written from Algorithm 1 of arXiv 2505.16932 ---------

DIRECT = {  # format -> (operand rounding, storage dtype or None for float32)
    "bf16": (lambda a: a.astype(BF16).astype(F32), BF16),
    "fp16": (lambda a: a.astype(np.float16).astype(F32), np.float16),
    "tf32": (lambda a: _round_frexp(a, 10), None),
}


def _store(a, fmt):
    dt = DIRECT[fmt][1]
    return a.astype(F32) if dt is None else a.astype(F32).astype(dt).astype(F32)


def _mm_direct(a, b, fmt):
    """op(a) @ op(b), each entry summed term by term in float32, then stored."""
    op = DIRECT[fmt][0]
    a, b = op(a), op(b)
    out = np.empty((a.shape[0], b.shape[1]), F32)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = F32(0)
            for k in range(a.shape[1]):
                acc = F32(acc + a[i, k] * b[k, j])
            out[i, j] = acc
    return _store(out, fmt)


def _ns_direct(u, coeffs, scale, fmt):
    u = u / np.abs(u).max()  # orthogonalize's max-abs normalization (float32)
    x = _store(u.T if u.shape[0] > u.shape[1] else u, fmt)
    x = _store(x / _store(_store(np.sqrt(np.sum(x * x, dtype=F32)), fmt) * F32(scale), fmt), fmt)
    for a, b, c in coeffs:
        g = _mm_direct(x, x.T, fmt)  # A = X X^T
        g = _store(_store(F32(b) * g, fmt) + _mm_direct(_store(F32(c) * g, fmt), g, fmt), fmt)  # b A + (c A) A
        x = _store(_store(F32(a) * x, fmt) + _mm_direct(g, x, fmt), fmt)  # a X + B X
    return x.T if u.shape[0] > u.shape[1] else x


def test_emulated_product_is_the_direct_product():
    rng = np.random.default_rng(2)
    for fmt in DIRECT:
        a, b = rng.standard_normal((5, 9)).astype(F32), rng.standard_normal((9, 4)).astype(F32)
        got = P.matmul(a, b, P.FORMATS[fmt])
        want = _mm_direct(a, b, fmt)
        # summation order may differ (BLAS vs term by term): equal, or one unit in the last place
        ulp = np.spacing(np.abs(want).astype(DIRECT[fmt][1] or F32)).astype(F32)
        assert (np.abs(got - want) <= ulp).all() and (got == want).mean() >= 0.9, fmt


@pytest.mark.parametrize("fmt", ["bf16", "fp16"])
@pytest.mark.parametrize("kernel", ["ns_keller", "polar_express_8"])
@pytest.mark.parametrize("shape", [(6, 10), (9, 5)])
def test_emulated_newton_schulz_follows_the_direct_low_precision_one(fmt, kernel, shape):
    """The emulation reproduces the direct low-precision trajectory, not the float32 one (on this
    machine bit for bit). tf32 is checked per product only: its results are stored in float32, so
    the BLAS summation order shows in them, and the iteration amplifies those last-bit changes into
    differences as large as tf32's own error."""
    rng = np.random.default_rng(sum(shape))
    u = rng.standard_normal(shape).astype(F32)
    cs = orth.COEFFICIENTS.get(kernel)
    want = _ns_direct(u, cs.coeffs, cs.norm_scale, fmt)
    got = orth.orthogonalize(u[None], kernel, precision=fmt)[0]
    exact = orth.orthogonalize(u[None].astype(np.float64), kernel)[0]
    assert got.dtype == F32
    assert (got == want).mean() >= 0.9
    assert np.abs(got - want).max() <= 0.1 * np.abs(exact - want).max()


def _well_conditioned(rng, b=4, m=24, n=40):
    q1 = np.linalg.qr(rng.standard_normal((b, m, m)))[0]
    q2 = np.linalg.qr(rng.standard_normal((b, n, m)))[0]
    s = rng.uniform(0.5, 1.0, (b, 1, m))
    return ((q1 * s) @ q2.transpose(0, 2, 1)).astype(F32)


def test_orthogonality_error_grows_with_the_formats_roundoff():
    """polar_express_8 on singular values in [0.5, 1] (the polynomial's own error < 1e-8): float32
    leaves ~1e-6; bf16 (unit roundoff 2^-8) leaves an error of a few 2^-8; fp16 (2^-11) about 8x
    less; tf32 products with fp32 storage sit between fp32 and fp16."""
    u = _well_conditioned(np.random.default_rng(4))
    err = {p: orth.orth_error(u, orth.orthogonalize(u, "polar_express_8", precision=p)).max() for p in P.FORMATS}
    eps = {p: P.FORMATS[p].eps for p in P.FORMATS}
    assert err["fp32"] < 1e-5
    assert eps["bf16"] / 4 <= err["bf16"] <= 8 * eps["bf16"], err
    assert eps["fp16"] / 4 <= err["fp16"] <= 8 * eps["fp16"], err
    assert err["fp32"] < err["tf32"] < err["fp16"] < err["bf16"], err


def test_precision_on_float64_input_and_on_svd():
    rng = np.random.default_rng(5)
    u = rng.standard_normal((3, 8, 12))
    o = orth.orthogonalize(u, "ns_keller", precision="fp32")
    assert o.dtype == np.float64
    np.testing.assert_array_equal(o, orth.orthogonalize(orth.max_abs_normalize(u).astype(F32), "ns_keller"))
    o16 = orth.orthogonalize(u.astype(F32), "svd", precision="bf16")
    np.testing.assert_array_equal(o16, P.round_mantissa(o16, 7))  # stored in bf16
    assert 2.0**-10 < orth.orth_error(u, o16).max() < 2.0**-5
    assert np.array_equal(
        orth.orthogonalize(np.zeros((2, 4, 6), F32), "polar_express", precision="bf16"), np.zeros((2, 4, 6))
    )


def test_unknown_precision_is_a_one_line_error():
    with pytest.raises(problems.ParamError, match="orth_precision: got 'int8'; allowed: .*bf16"):
        runners.make("muon", orth_precision="int8")


# --- orth_err --------------------------------------------------------------------------------


def test_orth_error_over_the_nonzero_singular_values():
    """svd gives ~0 for full-rank and rank-deficient U (O's zeros on U's null space do not count);
    Keller's map gives max |f(x_i) - 1| of its float64 scalar iteration, x_i = sigma_i / ||U||_F."""
    rng = np.random.default_rng(6)
    full = rng.standard_normal((2, 8, 12))
    low = rng.standard_normal((2, 8, 3)) @ rng.standard_normal((2, 3, 12))
    for u in (full, low, full.astype(F32), low.astype(F32)):
        tol = 1e-5 if u.dtype == F32 else 1e-12
        assert orth.orth_error(u, orth.orthogonalize(u, "svd")).max() < tol
    x = np.linalg.svd(low, compute_uv=False)[:, :3] / np.linalg.norm(low, axis=(1, 2))[:, None]
    for a, b, c in orth.KELLER:
        x = a * x + b * x**3 + c * x**5
    np.testing.assert_allclose(orth.orth_error(low, orth.orthogonalize(low, "ns_keller")), np.abs(x - 1).max(axis=1))
    assert np.array_equal(orth.orth_error(np.zeros((1, 4, 5)), np.zeros((1, 4, 5))), [0.0])


def _problem(runs=4):
    return problems.make("power_law_lsq", runs=runs, seed=np.arange(runs), m=8, n=12, alpha=1.0, beta=1.0)


def test_loop_logs_orth_err_at_logged_steps_only(monkeypatch):
    calls = []
    real = orth.orth_error
    monkeypatch.setattr(orth, "orth_error", lambda u, o: calls.append(1) or real(u, o))
    res = runners.run(_problem(), runners.make("muon", lr=0.02), steps=40, log_points=6, lanes=1)
    e = res.curves["orth_err"]
    assert np.isnan(e[0]).all() and np.isfinite(e[1:]).all()
    # Keller's quintic: singular values in ~[0.7, 1.2] where U is well-conditioned (step 1), and
    # its tiny ones stay tiny (error -> 1) once U's condition number passes ~1e3
    assert 0.05 < e[1].min() and e[1].max() < 0.5 and e[1:].max() < 1.25
    assert len(calls) == len(res.steps) - 1  # one layer, one orthogonalization per logged step
    svd = runners.run(_problem(), runners.make("muon", lr=0.02, orth="svd"), steps=40, log_points=6)
    assert np.nanmax(svd.curves["orth_err"]) < 1e-5
    bf = runners.run(_problem(), runners.make("muon", lr=0.02, orth="svd", orth_precision="bf16"), steps=40)
    assert 2.0**-10 < np.nanmax(bf.curves["orth_err"]) < 2.0**-5
    gd = runners.run(_problem(), runners.make("gd", lr=0.01), steps=40, log_points=6)
    assert np.isnan(gd.curves["orth_err"]).all()


def test_lanes_and_batches_give_the_same_orth_err():
    opt = runners.make("muon", lr=0.02, orth_precision="bf16")
    one = runners.run(_problem(), opt, steps=20, log_points=4, lanes=1)
    two = runners.run(_problem(), opt, steps=20, log_points=4, lanes=2)
    np.testing.assert_array_equal(one.curves["orth_err"], two.curves["orth_err"])


def _orth_error_reference(u, o):
    """orth_error's definition straight from float64 SVDs (the independent truth)."""
    su = np.linalg.svd(u.astype(np.float64), compute_uv=False)
    so = np.linalg.svd(o.astype(np.float64), compute_uv=False)
    tol = max(u.shape[-2:]) * np.finfo(u.dtype).eps * su[:, :1]
    k = (su > tol).sum(axis=1)
    return np.array([np.abs(s[:kk] - 1).max(initial=0.0) for s, kk in zip(so, k)])


@pytest.mark.parametrize("shape", [(8, 12), (12, 8), (16, 16), (2, 3)])
@pytest.mark.parametrize("kernel", ["svd", "ns_keller", "polar_express"])
def test_orth_error_gram_route_equals_the_svd_definition(shape, kernel):
    """float32 input takes the Gram route: the same k (rank-deficient and zero U included) and
    the same error, to float32 resolution, as the SVD definition."""
    m, n = shape
    rng = np.random.default_rng(m * n)
    r = min(m, n)
    ranks = [r, r, max(r - 1, 1), 1, 0]
    u = np.stack([rng.standard_normal((m, k)) @ rng.standard_normal((k, n)) for k in ranks]).astype(F32)
    u[1] *= np.float32(1e-20)  # tiny but representable: k stays full
    assert orth.gram_rank_safe(u) and not orth.gram_rank_safe(u.astype(np.float64))
    o = orth.orthogonalize(u, kernel)
    ref = _orth_error_reference(u, o)
    np.testing.assert_allclose(orth.orth_error(u, o), ref, rtol=0, atol=2e-6)
    if kernel == "svd":
        assert orth.orth_error(u, o).max() < 1e-5  # k counted right: O's zeros on U's null space do not count
