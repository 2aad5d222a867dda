"""Theory overlays that can come out either way (analysis/trend.py, analysis/rules/advantage.py):
the seen-rank A of Shen et al. and the two-sided trend test, on constructed data with known answers."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats


from analysis import trend as TR
from analysis.rules import RULES


class Tables:
    def __init__(self, **tables):
        self.tables = tables

    def table(self, name):
        if name not in self.tables:
            raise FileNotFoundError(name)
        return self.tables[name]


# --- the rank seen ------------------------------------------------------------------------------
def test_numerical_rank_matches_numpy():
    rng = np.random.default_rng(0)
    for k in (1, 3, 7, 16):
        G = rng.standard_normal((16, k)) @ rng.standard_normal((k, 16))
        s = np.linalg.svd(G, compute_uv=False)
        assert TR.numerical_rank(s) == np.linalg.matrix_rank(G, tol=TR.RANK_RTOL * s[0]) == k
    assert TR.numerical_rank(np.zeros(4)) == 0
    assert TR.numerical_rank([1.0, 1e-3, 1e-9], rtol=1e-6) == 2


def shen_runs(ranks, L=1.0, L_star=(1.0, 3.0, 6.0, 12.0), m=16, n=16):
    """One run per cell with constants c_L, c_L_star and a grad_rank curve whose maximum is the
    cell's rank (it starts lower and rises, as when components switch on)."""
    runs, curves = [], []
    for c, (k, ls) in enumerate(zip(ranks, L_star)):
        runs.append(
            {
                "run_id": c,
                "cell_id": c,
                "optimizer": "gd",
                "seed": 0,
                "status": "ok",
                "c_L": L,
                "c_L_star": ls,
                "p_m": m,
                "p_n": n,
            }
        )
        curves.append(pd.DataFrame({"run_id": c, "step": [0, 1, 10, 100], "grad_rank": [m, max(k - 1, 1), k, k]}))
    return pd.DataFrame(runs), pd.concat(curves, ignore_index=True)


def test_seen_rank_advantage_can_fall_below_one():
    runs, curves = shen_runs([2, 4, 8, 16])
    A = TR.seen_rank_advantage(runs, curves).set_index("cell_id")
    assert list(A["theory_rank"]) == [2, 4, 8, 16]  # step 0 (the start, m) is not a gradient the method saw
    assert np.allclose(A["theory_advantage"], np.array([2, 4, 8, 16]) * 1.0 / np.array([1.0, 3.0, 6.0, 12.0]))
    assert (A["min_mn"] == 16).all()
    runs2, curves2 = shen_runs([1, 1, 2, 4])
    assert (TR.seen_rank_advantage(runs2, curves2)["theory_advantage"] < 1).any()  # min(m, n) would give A >= 1 here
    with pytest.raises(ValueError, match="grad_rank"):
        TR.seen_rank_advantage(runs, curves.drop(columns="grad_rank"))


# --- the trend test -----------------------------------------------------------------------------
def _exact_spearman_p(x, y):
    """Two-sided p-value of Spearman's rho by enumerating every pairing."""
    xr, yr = stats.rankdata(x), stats.rankdata(y)
    rho = stats.pearsonr(xr, yr).statistic
    vals = np.array([stats.pearsonr(np.array(p), yr).statistic for p in itertools.permutations(xr)])
    return float(np.mean(np.abs(vals) >= abs(rho) - 1e-12))


def test_spearman_permutation_p_is_exact_for_few_cells():
    x = np.array([0.1, 0.5, 0.9, 1.3, 2.0, 2.2])
    y = np.array([0.0, 0.3, 0.2, 0.8, 0.6, 1.1])
    r = TR.trend_test(x, y, sign=1)
    assert np.isclose(r["statistic"], stats.spearmanr(x, y).statistic)
    assert np.isclose(r["p_value"], _exact_spearman_p(x, y))


@pytest.mark.parametrize("method", ["spearman", "kendall"])
def test_trend_test_outcomes(method):
    x = np.arange(10.0)
    wiggle = 0.5 * np.sin(3 * x)
    assert TR.trend_test(x, x + wiggle, sign=1, method=method)["status"] == "reproduced"
    assert (
        TR.trend_test(x, -x + wiggle, sign=1, method=method)["status"] == "not reproduced"
    )  # the opposite trend fails
    assert TR.trend_test(x, -x + wiggle, sign=-1, method=method)["status"] == "reproduced"
    assert TR.trend_test(x[:3], x[:3], sign=1, method=method)["status"] == "not testable"
    assert TR.trend_test(x, np.ones(10), sign=1, method=method)["status"] == "not testable"
    flat = np.array([0.3, -1.2, 0.8, 0.1, -0.4, 1.5, -0.9, 0.2, -0.1, 0.6])  # no trend with x (rho = +0.03)
    r = TR.trend_test(x, flat, sign=1, method=method)
    assert r["status"] == "partly" and r["p_value"] > 0.5 and r["ci_low"] < 0 < r["ci_high"]


def test_kendall_rows_match_scipy():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 4, (20, 7)).astype(float), rng.standard_normal((20, 7))  # ties in x
    want = [stats.kendalltau(a, b).statistic for a, b in zip(x, y)]
    assert np.allclose(TR.kendall_rows(x, y), want, equal_nan=True)


def test_trend_test_bad_input():
    with pytest.raises(ValueError, match="method: got 'pearson'"):
        TR.trend_test([1, 2, 3, 4], [1, 2, 3, 4], method="pearson")


# --- the rule -----------------------------------------------------------------------------------
def advantage_sweep(adv_by_cell, ks, seeds=range(3), with_rank=True):
    """Two methods over cells p_k; final_grad_nuc of muon = gd * 10^-adv (so the measured
    advantage log10(gd / muon) is adv), on a 3-point lr grid with the optimum at the middle lr."""
    runs, curves, rid = [], [], 0
    for c, (adv, k) in enumerate(zip(adv_by_cell, ks)):
        for opt in ("muon", "gd"):
            for lr in (0.01, 0.1, 1.0):
                for s in seeds:
                    base = (1 + abs(np.log10(lr) + 1)) * np.exp(0.01 * s)
                    v = base * (10.0**-adv if opt == "muon" else 1.0)
                    runs.append(
                        {
                            "run_id": rid,
                            "cell_id": c,
                            "p_k": k,
                            "p_m": 16,
                            "p_n": 16,
                            "optimizer": opt,
                            "h_lr": lr,
                            "seed": s,
                            "status": "ok",
                            "final_grad_nuc": v,
                            "c_L": 1.0,
                            "c_L_star": 2.0,
                        }
                    )
                    if with_rank:
                        curves.append(pd.DataFrame({"run_id": rid, "step": [1, 10], "grad_rank": [k, k]}))
                    rid += 1
    return Tables(runs=pd.DataFrame(runs), **({"curves": pd.concat(curves, ignore_index=True)} if with_rank else {}))


def test_advantage_trend_rule():
    ks = [1, 2, 4, 6, 8, 12, 16]
    adv = [-0.3, -0.1, 0.0, 0.2, 0.25, 0.5, 0.6]
    d = advantage_sweep(adv, ks)
    st, text, nums = RULES["advantage_trend"](d, focus="muon", rival="gd", against="k", sign=1)
    assert st == "reproduced" and nums["statistic"] == pytest.approx(1.0) and nums["cells"] == 7
    assert RULES["advantage_trend"](d, focus="muon", rival="gd", against="k", sign=-1)[0] == "not reproduced"
    st, _, nums = RULES["advantage_trend"](d, focus="muon", rival="gd", against="A_seen", sign=1)
    assert st == "reproduced" and "seen gradient rank" in nums["predictor"]
    d_opp = advantage_sweep(adv[::-1], ks)  # the advantage falls as the rank grows
    assert RULES["advantage_trend"](d_opp, focus="muon", rival="gd", against="A_seen", sign=1)[0] == "not reproduced"
    d_few = advantage_sweep(adv[:3], ks[:3])
    assert RULES["advantage_trend"](d_few, focus="muon", rival="gd", against="k", sign=1)[0] == "not testable"
    st, text, _ = RULES["advantage_trend"](
        advantage_sweep(adv, ks, with_rank=False), focus="muon", rival="gd", against="A_seen"
    )
    assert st == "not testable" and "grad_rank" in text
