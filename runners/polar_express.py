"""Polar Express coefficient design: the greedy minimax composition of odd polynomials of
Amsel, Persson, Musco & Gower, "The Polar Express: Optimal Matrix Sign Methods and Their
Application to the Muon Algorithm", arXiv 2505.16932 (read: the revision dated 29 September 2025;
Algorithms 1-3, Theorem 4.1, Section 4.4 and Appendices D and G).

What the paper states and this module implements (in float64, offline; the kernels only see the
resulting coefficients):

- Greedy is optimal (Theorem 4.1, Algorithm 2): with l_1 = l, u_1 = 1, the step polynomial p_t is
  the odd polynomial of degree d that minimizes max_{x in [l_t, u_t]} |1 - p(x)|, and then
  l_{t+1} = p_t(l_t), u_{t+1} = 2 - l_{t+1}; the composition p_T o ... o p_1 is the best such
  composition on [l, 1], with max error 1 - l_{T+1} (eq. 12).
- Each p_t comes from the equioscillation theorem by a Remez exchange (Appendix D, Algorithm 3):
  d = 2q + 1 has q + 2 equioscillation points, the two endpoints and the q positive stationary
  points of p; alternate between solving the (q + 2) x (q + 2) system p(x_i) + (-1)^i E = 1 and
  moving the interior points to the roots of p' (a degree-q polynomial in y = x^2), until |E|
  stops changing. For l / u >= 1 - eps_double^(1/3) the optimum equals, to double precision, the
  degree-d Pade (Newton-Schulz) polynomial (x/u) h(1 - (x/u)^2), h the [q/0] Pade approximant of
  (1 - y)^(-1/2) (for d = 5: (15 x - 10 x^3 + 3 x^5) / 8), which is returned instead (the linear
  system is ill-conditioned there).
- Finite precision (Section 4.4, Appendix G): "cushioning" solves each step on
  [max(l_t, cushion u_t), u_t] and rescales the result by 2 / (p(l_t) + p(u_t)) so that it is
  again centred around 1 on [l_t, u_t] (Appendix G uses cushion = 0.02407327424182761; the text
  of Section 4.4 says u_t / 10); the "safety factor" replaces p_t(x) by p_t(x / 1.01) in every
  step but the last (coefficient of x^(2j+1) divided by 1.01^(2j+1)); and the input is divided by
  1.01 ||M||_F (Algorithm 1; ``norm_scale`` of the registered set). The third tweak of the paper,
  an additive 1e-7 (or 1e-2) in that denominator, is not used: the lab's kernels map zero to zero
  without it (docs/optimizers.md).

Algorithm 1 of the paper prints the 8 coefficient triples this construction gives for d = 5,
l = 1e-3 and the Appendix G cushion; tests/runners/test_polar_express_generator.py compares the
output of :func:`composition` with those printed numbers.
"""

from __future__ import annotations

import math

import numpy as np

EPS_DOUBLE = 1.11e-16  # as Algorithm 3 writes it
PAPER_L = 1e-3  # the lower bound used for the paper's Muon experiments (Section 4.3)
PAPER_CUSHION = 0.02407327424182761  # Appendix G
PAPER_SAFETY = 1.01  # Section 4.4 / Algorithm 1


def _check_degree(degree) -> int:
    if not (isinstance(degree, int) and degree >= 3 and degree % 2 == 1):
        raise ValueError(f"degree: got {degree!r}; allowed: an odd integer >= 3")
    return degree


def evaluate(coeffs, x):
    """p(x) = sum_j coeffs[j] x^(2j+1) (odd coefficients, lowest first), elementwise in float64."""
    x = np.asarray(x, dtype=np.float64)
    x2, out = x * x, np.zeros_like(x)
    for c in reversed(tuple(coeffs)):  # Horner in x^2
        out = out * x2 + c
    return out * x


def pade(degree: int = 5, u: float = 1.0) -> tuple:
    """The degree-d Pade (Newton-Schulz) polynomial on [., u]: (x/u) h(1 - (x/u)^2) with
    h(y) = sum_k binom(2k, k) 4^-k y^k, the [q/0] Pade approximant of (1 - y)^(-1/2), q = (d-1)/2
    (arXiv 2505.16932, Appendix D). Odd coefficients, lowest first."""
    q = (_check_degree(degree) - 1) // 2
    s = [0.0] * (q + 1)  # h(1 - s) as a polynomial in s = (x/u)^2
    for k in range(q + 1):
        w = math.comb(2 * k, k) / 4**k
        for j in range(k + 1):
            s[j] += w * math.comb(k, j) * (-1) ** j
    return tuple(s[j] / u ** (2 * j + 1) for j in range(q + 1))


def minimax(l: float, u: float, degree: int = 5, max_iter: int = 100) -> tuple:
    """The odd polynomial of degree ``degree`` minimizing max_{x in [l, u]} |1 - p(x)|, by the
    Remez exchange of arXiv 2505.16932, Appendix D / Algorithm 3 (interior trial points start at
    the midpoints of q equal subintervals: (3l + u)/4 and (l + 3u)/4 for d = 5, as there).
    Odd coefficients, lowest first; 0 < l <= u."""
    q = (_check_degree(degree) - 1) // 2
    l, u = float(l), float(u)
    if not (0 < l <= u < float("inf")):
        raise ValueError(f"interval: got [{l!r}, {u!r}]; allowed: 0 < l <= u")
    if l / u >= 1 - EPS_DOUBLE ** (1 / 3):
        return pade(degree, u)
    frac = (2 * np.arange(1, q + 1) - 1) / (2 * q)
    pts = np.concatenate([[l], l + (u - l) * frac, [u]])
    powers = 2 * np.arange(q + 1) + 1
    alt = (-1.0) ** np.arange(q + 2)
    e_old = None
    for _ in range(max_iter):
        lhs = np.concatenate([pts[:, None] ** powers[None, :], alt[:, None]], axis=1)
        sol = np.linalg.solve(lhs, np.ones(q + 2))
        coeffs, e = sol[:-1], sol[-1]
        # p'(x) = sum_j (2j+1) c_j y^j with y = x^2: its q roots in (l^2, u^2) are the new interior points
        roots = np.roots((powers * coeffs)[::-1])
        y = np.sort(roots[np.abs(roots.imag) <= 1e-12 * np.abs(roots)].real)
        y = y[(y > l * l) & (y < u * u)]
        if len(y) != q:
            raise ArithmeticError(f"Remez on [{l}, {u}], degree {degree}: {len(y)} interior extrema, expected {q}")
        pts = np.concatenate([[l], np.sqrt(y), [u]])
        if e_old is not None and abs(abs(e) - abs(e_old)) <= 1e-15:
            break
        e_old = e
    else:
        raise ArithmeticError(f"Remez on [{l}, {u}], degree {degree}: no convergence in {max_iter} iterations")
    return tuple(float(c) for c in coeffs)


def composition(
    l: float = PAPER_L,
    steps: int = 8,
    degree: int = 5,
    cushion: float = PAPER_CUSHION,
    safety: float = 1.0,
) -> list[tuple]:
    """The Polar Express steps p_1, ..., p_T for singular values in [l, 1] (arXiv 2505.16932,
    Algorithm 2 with the finite-precision changes of Section 4.4 as Appendix G makes them):
    each step is the minimax polynomial on [max(l_t, cushion u_t), u_t], rescaled by
    2 / (p(l_t) + p(u_t)); l_{t+1} = p_t(l_t), u_{t+1} = 2 - l_{t+1}. ``cushion = 0`` is the
    plain greedy construction (Theorem 4.1). ``safety`` > 1 replaces p_t(x) by p_t(x / safety) in
    every step but the last (the paper: 1.01). Returns one tuple of odd coefficients (lowest
    first) per step; for d = 5 these are the (a, b, c) triples of :mod:`runners.orth`."""
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps: got {steps!r}; allowed: an integer >= 1")
    if not (0 < float(l) < 1):
        raise ValueError(f"l: got {l!r}; allowed: 0 < l < 1")
    if not (0 <= float(cushion) < 1):
        raise ValueError(f"cushion: got {cushion!r}; allowed: 0 <= cushion < 1")
    if not (float(safety) >= 1):
        raise ValueError(f"safety: got {safety!r}; allowed: a number >= 1")
    lo, hi, out = float(l), 1.0, []
    for _ in range(steps):
        lo, hi = min(lo, hi), max(lo, hi)  # once converged, rounding can put l_t a hair above 1
        c = np.array(minimax(max(lo, cushion * hi), hi, degree))
        c *= 2 / (evaluate(c, lo) + evaluate(c, hi))
        out.append(c)
        lo = float(evaluate(c, lo))
        hi = 2 - lo
    powers = 2 * np.arange(len(out[0])) + 1
    return [tuple(float(v) for v in (c / safety**powers if t + 1 < steps else c)) for t, c in enumerate(out)]


def bounds(coeffs_list, l: float) -> list[tuple[float, float]]:
    """[l_t, u_t] for t = 1..T+1 of the greedy recursion l_{t+1} = p_t(l_t), u_{t+1} = 2 - l_{t+1}
    (u_1 = 1), for steps given as odd-coefficient tuples."""
    out = [(float(l), 1.0)]
    for c in coeffs_list:
        lo = float(evaluate(c, out[-1][0]))
        out.append((lo, 2 - lo))
    return out


def as_triples(coeffs_list) -> tuple:
    """Odd-coefficient tuples of degree <= 5 as the (a, b, c) triples of the Newton-Schulz kernels
    (a cubic step gets c = 0)."""
    out = []
    for c in coeffs_list:
        if len(c) > 3:
            raise ValueError(f"degree: got {2 * len(c) - 1}; allowed: 3 or 5 (the kernels run quintic steps)")
        out.append(tuple(float(v) for v in c) + (0.0,) * (3 - len(c)))
    return tuple(out)
