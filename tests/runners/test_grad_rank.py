"""curves.csv ``grad_rank``: the numerical rank of the exact gradient (singular values > 1e-6 x
the largest), checked against np.linalg.matrix_rank (an SVD, with the same absolute tolerance)
and against analysis.trend.numerical_rank, the definition the analysis reads it with."""

import numpy as np
import pytest

import problems
import runners
from analysis import trend
from problems.backend import get_backend
from runners import loop, orth


def _low_rank(rng, B, m, n, ks):
    """(B, m, n) float64 matrices, matrix b of rank ks[b] (products of Gaussian factors), scaled
    over several decades so that the tolerance is relative."""
    out = np.zeros((B, m, n))
    for b, k in enumerate(ks):
        if k:
            out[b] = rng.standard_normal((m, k)) @ rng.standard_normal((k, n)) * 10.0 ** rng.uniform(-3, 3)
    return out


def test_tolerance_is_the_analysis_one():
    assert loop.RANK_RTOL == trend.RANK_RTOL


@pytest.mark.parametrize("shape", [(7, 12), (12, 7), (9, 9)])
def test_numerical_rank_matches_svd_rank_on_low_rank_matrices(shape):
    m, n = shape
    rng = np.random.default_rng(sum(shape))
    ks = [0, 1, 2, 3, min(m, n) - 1, min(m, n), 4, 5]
    g = _low_rank(rng, len(ks), m, n, ks)
    s = orth.singular_values(g)
    got = loop._numerical_rank(s, np)
    truth = [np.linalg.matrix_rank(x, tol=loop.RANK_RTOL * np.linalg.norm(x, 2)) if x.any() else 0 for x in g]
    assert list(got) == truth == ks
    assert list(trend.numerical_rank(s)) == ks  # the analysis counts the same


def test_non_finite_gradient_has_no_rank():
    g = _low_rank(np.random.default_rng(0), 2, 4, 5, [2, 3])
    g[1, 0, 0] = np.nan
    r = loop._numerical_rank(orth.singular_values(g), np)
    assert r[0] == 2 and np.isnan(r[1])


@pytest.mark.parametrize("k", [1, 3, 6])
def test_low_rank_quadratic_gradient_rank_is_bounded_by_the_hessian_rank(k):
    """Rank-k Hessian with rank-one eigen-matrices (basis "rotated"): the gradient H[X - X*] is a
    sum of k rank-one matrices, so grad_rank <= k at every logged step; at the last step it is
    the SVD rank of the gradient at the returned parameters. Logged only: no final_ column."""
    p = problems.make(
        "quadratic",
        runs=3,
        seed=np.array([0, 1, 2]),
        m=8,
        n=6,
        hessian="low_rank",
        basis="rotated",
        rank=k,
        dtype="float64",
    )
    r = runners.run(p, runners.make("muon", lr=0.02), steps=40, log_points=6)
    rank = r.curves["grad_rank"]
    assert rank.shape == r.curves["gap"].shape and (rank >= 1).all() and (rank <= k).all()
    g = p.grad(tuple(get_backend("numpy").asarray(x) for x in r.params))[0]
    truth = [np.linalg.matrix_rank(x, tol=loop.RANK_RTOL * np.linalg.norm(x, 2)) for x in np.asarray(g)]
    assert list(rank[-1]) == truth
    assert "grad_rank" not in r.final


def test_multi_layer_rank_is_the_max_over_layers():
    p = problems.make("linear_net", runs=2, seed=np.array([3, 4]), m=3, n=4, hidden=2, teacher_rank=2, dtype="float64")
    r = runners.run(p, runners.make("gd", lr=0.05), steps=5, log_points=3)
    grads = p.grad(tuple(get_backend("numpy").asarray(x) for x in r.params))
    assert len(grads) > 1
    per_layer = [
        [np.linalg.matrix_rank(x, tol=loop.RANK_RTOL * np.linalg.norm(x, 2)) for x in np.asarray(g)] for g in grads
    ]
    assert list(r.curves["grad_rank"][-1]) == list(np.max(per_layer, axis=0))
