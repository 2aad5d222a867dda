"""``block_norm = "L"`` on the block-mixture quadratic: L is the same at every coupling, checked
against a dense eigendecomposition of the Hessian formed from the problem's own gradients."""

import numpy as np
import pytest

import problems
from problems.params import ParamError

COUPLINGS = [0.0, 0.25, 0.5, 0.75, 1.0]


def make(**kw):
    kw.setdefault("dtype", "float64")
    return problems.make("quadratic", **kw)


def dense_hessian(P, b):
    """Column k = grad(X* + E_k) of run b (grad f(X) = H[X - X*])."""
    m, n = P.layer_shapes[0]
    xs = P.backend.to_numpy(P.xstar) if hasattr(P.backend, "to_numpy") else np.asarray(P.xstar)
    cols = []
    for k in range(m * n):
        e = np.zeros((P.runs, m, n))
        e.reshape(P.runs, -1)[:, k] = 1.0
        g = P.grad((P.backend.asarray(xs + e),))[0]
        cols.append(np.asarray(g)[b].reshape(-1))
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("layout,blocks", [("rows", 2), ("tiles", 4)])
def test_L_constant_across_coupling(layout, blocks):
    kw = dict(
        runs=len(COUPLINGS),
        seed=3,
        m=4,
        n=4,
        hessian="block",
        blocks=blocks,
        layout=layout,
        alpha=1.5,
        alpha_right=1.0,
        mu=0.01,
        coupling=COUPLINGS,
    )
    plain, norm = make(**kw), make(block_norm="L", **kw)
    top_plain = np.array([np.linalg.eigvalsh(dense_hessian(plain, b)).max() for b in range(len(COUPLINGS))])
    top_norm = np.array([np.linalg.eigvalsh(dense_hessian(norm, b)).max() for b in range(len(COUPLINGS))])
    # the plain mixture's L dips between the ends (a convex mix of two operators with one spectrum)
    assert top_plain[2] < top_plain[0] * (1 - 1e-3)
    np.testing.assert_allclose(top_plain[[0, -1]], top_plain[0], rtol=1e-10)
    # normalized: every coupling has the end points' L, and the reported constant says so
    np.testing.assert_allclose(top_norm, top_plain[0], rtol=1e-9)
    np.testing.assert_allclose(norm.constants()["L"], top_plain[0], rtol=1e-9)
    # away from the ridge it is the plain operator times one factor: H - mu I scales by s
    for b in range(len(COUPLINGS)):
        hp, hn = dense_hessian(plain, b), dense_hessian(norm, b)
        eye = 0.01 * np.eye(hp.shape[0])
        s = (top_plain[0] - 0.01) / (top_plain[b] - 0.01)
        np.testing.assert_allclose(hn - eye, s * (hp - eye), atol=1e-12)
    # the L_star bracket stays a bracket of the rescaled operator: L <= low <= high
    c = norm.constants()
    assert np.all(c["L_star_low"] >= c["L"] * (1 - 1e-9)) and np.all(c["L_star_high"] >= c["L_star_low"] * (1 - 1e-9))


def test_block_norm_refused_elsewhere():
    with pytest.raises(ParamError, match="block_norm"):
        make(runs=1, seed=0, m=4, n=4, hessian="kronecker", block_norm="L")
    with pytest.raises(ParamError, match="block_norm"):
        make(runs=1, seed=0, m=4, n=4, hessian="block", blocks=2, block_norm="trace")
