"""The Polar Express coefficient generator (runners.polar_express; Amsel et al., arXiv 2505.16932,
revision of 29 Sep 2025) against independent truth: the coefficients printed in the paper's
Algorithm 1, the equioscillation characterization of the minimax polynomial, a linear-programming
minimax solve (scipy), the closed-form cubic of the paper's Section 4.2, and the optimality of the
greedy composition (Theorem 4.1) against Newton-Schulz and Keller's iteration."""

import numpy as np
import pytest
from scipy.optimize import linprog

from runners import orth
from runners import polar_express as pe

# arXiv 2505.16932, Algorithm 1, `coeffs_list` before the safety factor (d = 5, l = 1e-3); the
# last entry is what "subsequent coeffs equal ... numerically".
PRINTED = [
    (8.28721201814563, -23.595886519098837, 17.300387312530933),
    (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
    (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
    (3.3184196573706015, -2.488488024314874, 0.51004894012372),
    (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
    (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
    (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
    (1.875, -1.25, 0.375),
]


def test_reproduces_the_papers_printed_coefficients():
    got = pe.composition(1e-3, 10)  # the paper's Appendix G prints optimal_composition(1e-3, 10)
    for t in range(6):  # well-conditioned steps: to the printed digits
        np.testing.assert_allclose(got[t], PRINTED[t], rtol=1e-13, atol=0)
    # step 7 solves on [0.99882, 1.00118], where the Remez system is ill-conditioned (Appendix D)
    np.testing.assert_allclose(got[6], PRINTED[6], rtol=1e-10, atol=0)
    # the printed last entry is the Pade limit that step 8 reaches to 1e-9 and step 9 exactly
    np.testing.assert_allclose(got[7], PRINTED[7], rtol=1e-8, atol=0)
    np.testing.assert_allclose(got[8], PRINTED[7], rtol=1e-14, atol=0)


def test_registered_8_step_set_is_algorithm_1_with_its_safety_factor():
    cs = orth.COEFFICIENTS.get("polar_express_8")
    assert cs.norm_scale == 1.01 and len(cs.coeffs) == 8
    safe = [(a / 1.01, b / 1.01**3, c / 1.01**5) for a, b, c in PRINTED[:-1]] + [PRINTED[-1]]
    np.testing.assert_allclose(cs.coeffs[:6], safe[:6], rtol=1e-13)
    np.testing.assert_allclose(cs.coeffs[6:], safe[6:], rtol=1e-8)
    assert "polar_express_8" in orth.ORTH and "ns_you" in orth.ORTH and len(orth.COEFFICIENTS.get("ns_you").coeffs) == 6


def _extrema(e, x, rel=1e-6):
    """Signs of the clusters of grid points where |e| is within rel of its max, in x order."""
    top = np.abs(e) >= (1 - rel) * np.abs(e).max()
    idx = np.flatnonzero(top)
    clusters = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    return [np.sign(e[c[np.argmax(np.abs(e[c]))]]) for c in clusters]


@pytest.mark.parametrize("degree", [3, 5, 7])
@pytest.mark.parametrize("l", [0.5, 0.1, 1e-2, 1e-3, 1e-5])
def test_minimax_error_equioscillates_at_q_plus_2_points(l, degree):
    """The equioscillation theorem (the paper's Lemma A.1): the optimum of degree 2q + 1 attains
    its max error with alternating signs at q + 2 points, the first (x = l) with 1 - p > 0."""
    u = 1.7
    c = pe.minimax(l, u, degree)
    x = np.linspace(l, u, 400001)
    e = 1 - pe.evaluate(c, x)
    signs = _extrema(e, x)
    q = (degree - 1) // 2
    assert len(signs) == q + 2, signs
    assert signs[0] > 0 and all(s1 == -s0 for s0, s1 in zip(signs, signs[1:])), signs
    assert abs(e[0]) == pytest.approx(np.abs(e).max(), rel=1e-12)


@pytest.mark.parametrize("degree,l", [(5, 0.2), (5, 1e-2), (7, 0.05), (3, 1e-3)])
def test_minimax_matches_a_linear_programming_solve(degree, l):
    """min_E s.t. |1 - sum_j c_j x_i^(2j+1)| <= E on a grid, by HiGHS: the discrete optimum is a
    lower bound of the continuous one, and equal to it up to the grid's resolution."""
    x = np.geomspace(l, 1, 3000)
    powers = 2 * np.arange((degree + 1) // 2) + 1
    v = x[:, None] ** powers
    k = v.shape[1]
    a_ub = np.block([[-v, -np.ones((len(x), 1))], [v, -np.ones((len(x), 1))]])
    b_ub = np.concatenate([-np.ones(len(x)), np.ones(len(x))])
    lp = linprog(np.r_[np.zeros(k), 1.0], A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * (k + 1), method="highs")
    assert lp.success
    e_remez = np.abs(1 - pe.evaluate(pe.minimax(l, 1, degree), np.linspace(l, 1, 200001))).max()
    assert lp.fun <= e_remez * (1 + 1e-9)
    assert e_remez == pytest.approx(lp.fun, rel=1e-5)


@pytest.mark.parametrize("l,u", [(0.01, 1.0), (0.3, 1.2), (0.9, 1.1)])
def test_cubic_is_the_papers_closed_form(l, u):
    """Section 4.2: the optimal odd cubic is beta p_NS(alpha x), p_NS(x) = 3x/2 - x^3/2,
    alpha = sqrt(3 / (u^2 + l u + l^2)), beta = 4 / (2 + l u (l + u) alpha^3)."""
    alpha = np.sqrt(3 / (u * u + l * u + l * l))
    beta = 4 / (2 + l * u * (l + u) * alpha**3)
    np.testing.assert_allclose(pe.minimax(l, u, 3), (1.5 * beta * alpha, -0.5 * beta * alpha**3), rtol=1e-12)


def test_near_degenerate_interval_is_the_pade_polynomial():
    np.testing.assert_allclose(pe.minimax(1 - 1e-7, 1.0, 5), (15 / 8, -10 / 8, 3 / 8), rtol=1e-15)
    np.testing.assert_allclose(pe.pade(7), (35 / 16, -35 / 16, 21 / 16, -5 / 16), rtol=1e-15)  # the paper's Sec. 2


def _compose(coeffs_list, x):
    for c in coeffs_list:
        x = pe.evaluate(c, x)
    return x


@pytest.mark.parametrize("l", [1e-1, 1e-3])
def test_greedy_composition_is_optimal_and_its_band_shrinks(l):
    """Theorem 4.1 / eq. (12): with no cushion, the T-step composition maps [l, 1] onto
    [l_{T+1}, 2 - l_{T+1}] (max error 1 - l_{T+1}), the error shrinks with T, and no other
    T-step composition of quintics does better: not degree-5 Newton-Schulz, not Keller's."""
    x = np.geomspace(l, 1, 200001)
    steps = pe.composition(l, 8, cushion=0.0)
    band = pe.bounds(steps, l)
    errs = []
    for t in range(1, 9):
        y = _compose(steps[:t], x)
        lo = band[t][0]
        assert y.min() == pytest.approx(lo, rel=1e-9, abs=1e-12)
        assert y.max() <= 2 - lo + 1e-9
        err = np.abs(1 - y).max()
        assert err == pytest.approx(1 - lo, rel=1e-6, abs=1e-12)
        for rival in ([pe.pade(5)] * t, [orth.KELLER[0]] * t):
            assert err <= np.abs(1 - _compose(rival, x)).max() + 1e-12
        errs.append(err)
    assert all(b < a for a, b in zip(errs, errs[1:]) if a > 1e-12)


def _floor(steps, l):
    """min over steps and x in (0, u_t] of p_t(x) / x."""
    band = pe.bounds(steps, l)
    out = []
    for c, (lo, hi) in zip(steps, band):
        xs = np.linspace(1e-9, hi, 100001)
        out.append((pe.evaluate(c, xs) / xs).min())
    return min(out)


def test_cushioned_composition_keeps_its_band_and_floor():
    """Section 4.4: with the cushion every step still maps [l_t, u_t] into [l_{t+1}, 2 - l_{t+1}]
    (the recentred band); solving as though l_t = u_t / 10 gives p_t(x) >= 0.236 x on [0, u_t]
    (the text's rule; Appendix G's smaller cushion keeps p_t(x) / x >= 0.1, no sign flip), which
    the uncushioned greedy steps violate."""
    steps = pe.composition(1e-3, 8)
    band = pe.bounds(steps, 1e-3)
    for t, c in enumerate(steps):
        lo, hi = band[t]
        y = pe.evaluate(c, np.linspace(lo, hi, 100001))
        assert y.min() >= band[t + 1][0] * (1 - 1e-12) and y.max() <= band[t + 1][1] * (1 + 1e-12)
    assert 1 - band[-1][0] < 1e-8
    assert _floor(pe.composition(1e-3, 8, cushion=0.1), 1e-3) >= 0.236
    assert _floor(steps, 1e-3) >= 0.1
    assert _floor(pe.composition(1e-3, 8, cushion=0.0), 1e-3) < 0.1


def test_safety_factor_is_the_argument_scaling():
    plain, safe = pe.composition(1e-2, 5), pe.composition(1e-2, 5, safety=1.01)
    x = np.linspace(0, 1.1, 1001)
    for t in range(4):
        np.testing.assert_allclose(pe.evaluate(safe[t], x), pe.evaluate(plain[t], x / 1.01), rtol=1e-13, atol=1e-15)
    assert safe[4] == plain[4]


def test_kernel_with_generated_set_follows_the_scalar_map():
    """O = U_r p(Sigma) V_r^T: the float64 kernel's singular values are the composition applied to
    sigma / (1.01 ||U||_F)."""
    rng = np.random.default_rng(3)
    m, n = 12, 20
    s = np.geomspace(1, 1e-3, m)
    q1, _ = np.linalg.qr(rng.standard_normal((m, m)))
    q2, _ = np.linalg.qr(rng.standard_normal((n, m)))
    u = (q1 * s) @ q2.T
    out = orth.orthogonalize(u[None], "polar_express_8")[0]
    want = _compose(orth.COEFFICIENTS.get("polar_express_8").coeffs, s / (1.01 * np.linalg.norm(u)))
    np.testing.assert_allclose(np.sort(np.linalg.svd(out, compute_uv=False)), np.sort(want), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "call,field",
    [
        (lambda: pe.minimax(0.1, 1, 4), "degree"),
        (lambda: pe.minimax(0.0, 1, 5), "interval"),
        (lambda: pe.composition(1.5), "l"),
        (lambda: pe.composition(1e-3, 0), "steps"),
        (lambda: pe.composition(1e-3, safety=0.9), "safety"),
        (lambda: pe.as_triples(pe.composition(1e-3, 2, degree=7)), "degree"),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        call()
