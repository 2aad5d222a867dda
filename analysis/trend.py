"""Theory overlays that can come out either way.

1. Shen et al.'s bound ratio with the rank of the gradients actually seen. Shen et al. (arXiv
   2505.23737, v2) compare GD, analysed with the Frobenius smoothness L, and Muon, analysed with
   the spectral-to-nuclear smoothness L_star; the r in the comparison enters through
   ||G||_* <= sqrt(rank G) ||G||_F, so it is the rank of the gradients the method sees (at most
   the Hessian's rank on a quadratic whose gradients lie in its range), not min(m, n)
   (../shared/PAPERS.md). With r = min(m, n), L <= L_star <= r L gives A = r L / L_star >= 1 in
   every cell, so "Muon wins where A > 1" cannot fail; with the seen rank k, A = k L / L_star can
   fall below 1. :func:`numerical_rank` is the definition of the rank a sweep must record (a
   ``grad_rank`` column: the numerical rank of the exact gradient at each logged step), and
   :func:`seen_rank_advantage` computes A from it.
2. A two-sided trend test (:func:`trend_test`) of a measured quantity against a predictor:
   Spearman's rho with a permutation p-value (exact for n <= 7 cells, 9999 random pairings
   otherwise) or Kendall's tau (scipy's exact or asymptotic p-value), and a bootstrap CI of the
   statistic over cells. Its failure is possible and reported (see :func:`trend_test` for the rule).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .stats import LEVEL, log10_ratio
from .theory import shen_advantage

RANK_RTOL = 1e-6  # relative tolerance of the numerical rank: sigma_i > RANK_RTOL * sigma_max
RANK_COLUMN = "grad_rank"
ALPHA = 0.05
MIN_CELLS = 4
N_PERMUTATIONS = 9999
N_BOOT = 1999
METHODS = ("spearman", "kendall")


# --- 1. the rank of the gradients seen ---------------------------------------------------------
def numerical_rank(singular_values, rtol: float = RANK_RTOL) -> np.ndarray:
    """Number of singular values > ``rtol`` x the largest, along the last axis (0 for a zero
    matrix). The lab's ``grad_rank`` column must be this count for the exact gradient at each
    logged step, with ``rtol`` stated (default 1e-6)."""
    s = np.abs(np.asarray(singular_values, float))
    top = s.max(axis=-1, keepdims=True)
    return ((s > rtol * top) & (top > 0)).sum(axis=-1)


def seen_rank(
    runs: pd.DataFrame, curves: pd.DataFrame | None = None, column: str = RANK_COLUMN, how: str = "max", optimizers=None
) -> pd.Series:
    """Per cell_id: the rank of the gradients seen, from ``column`` in curves.csv (logged steps
    >= 1; per run the maximum over steps) or else in runs.csv (one value per run), then over the
    cell's runs (of ``optimizers`` when given) the maximum (``how = "max"``, the rank bound the
    inequality needs along every iterate) or the median (``"median"``)."""
    if how not in ("max", "median"):
        raise ValueError(f"how: got {how!r}; allowed: max, median")
    r = (
        runs
        if optimizers is None
        else runs[runs["optimizer"].isin([optimizers] if isinstance(optimizers, str) else optimizers)]
    )
    if curves is not None and column in curves:
        c = curves[curves["run_id"].isin(r["run_id"]) & (curves["step"] >= 1)]
        per_run = c.groupby("run_id")[column].max()
    elif column in r:
        per_run = r.set_index("run_id")[column].astype(float)
    else:
        raise ValueError(
            f"{column}: not a column of curves.csv or runs.csv; allowed: a recorded gradient rank "
            f"(numerical rank of the exact gradient, rtol {RANK_RTOL:g})"
        )
    cell = r.set_index("run_id")["cell_id"].reindex(per_run.index)
    g = per_run.groupby(cell)
    return (g.max() if how == "max" else g.median()).rename("seen_rank")


def seen_rank_advantage(
    runs: pd.DataFrame, curves: pd.DataFrame | None = None, column: str = RANK_COLUMN, how: str = "max", optimizers=None
) -> pd.DataFrame:
    """Shen et al.'s A = k L / L_star per cell with k = :func:`seen_rank` instead of min(m, n)
    (:func:`analysis.theory.shen_advantage` with ``c_rank`` replaced; its low / high range from
    the L_star bounds). Columns: cell_id, theory_rank (= k), theory_L, theory_L_star,
    theory_advantage, theory_advantage_low, theory_advantage_high, and min_mn (min(m, n) where
    p_m / p_n exist) for comparison. Empty when the problem reports no L / L_star."""
    k = seen_rank(runs, curves, column, how, optimizers)
    out = shen_advantage(runs.assign(c_rank=runs["cell_id"].map(k).astype(float)))
    if not out.empty and "p_m" in runs and "p_n" in runs:
        mn = runs.groupby("cell_id").apply(
            lambda g: float(min(g["p_m"].iloc[0], g["p_n"].iloc[0])), include_groups=False
        )
        out["min_mn"] = out["cell_id"].map(mn)
    return out


# --- 2. the trend test -------------------------------------------------------------------------
def _rank_corr(xr: np.ndarray, yr: np.ndarray) -> np.ndarray:
    """Pearson correlation of rank rows (..., n) with yr (n,) or (..., n): Spearman's rho."""
    xc = xr - xr.mean(axis=-1, keepdims=True)
    yc = yr - yr.mean(axis=-1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=-1) * (yc * yc).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (xc * yc).sum(axis=-1) / np.where(den > 0, den, 1.0), np.nan)


def _statistic(x, y, method: str, seed: int = 0) -> tuple[float, float]:
    """(statistic, two-sided p-value)."""
    if method == "kendall":
        r = stats.kendalltau(x, y)
        return float(r.statistic), float(r.pvalue)
    xr, yr = stats.rankdata(x), stats.rankdata(y)
    res = stats.permutation_test(
        (xr,),
        lambda a, axis=-1: _rank_corr(a, yr),
        permutation_type="pairings",
        vectorized=True,
        n_resamples=N_PERMUTATIONS,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(res.statistic), float(res.pvalue)


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row pair of x, y (R, n): (concordant - discordant) pairs over
    sqrt(pairs untied in x * pairs untied in y); NaN where a row is constant."""
    iu = np.triu_indices(x.shape[-1], k=1)
    dx = np.sign(x[:, :, None] - x[:, None, :])[:, iu[0], iu[1]]
    dy = np.sign(y[:, :, None] - y[:, None, :])[:, iu[0], iu[1]]
    den = np.sqrt((dx != 0).sum(axis=-1) * (dy != 0).sum(axis=-1).astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (dx * dy).sum(axis=-1) / np.where(den > 0, den, 1.0), np.nan)


def _boot_ci(x, y, method: str, level: float, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap CI of the statistic, resampling cells (pairs); degenerate resamples
    (a constant coordinate) are left out."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    xb, yb = x[idx], y[idx]
    if method == "kendall":
        vals = kendall_rows(xb, yb)
    else:
        vals = _rank_corr(stats.rankdata(xb, axis=-1), stats.rankdata(yb, axis=-1))
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return np.nan, np.nan
    a = (1 - level) / 2
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


def trend_test(
    x,
    y,
    sign: int = 1,
    alpha: float = ALPHA,
    method: str = "spearman",
    min_cells: int = MIN_CELLS,
    level: float = LEVEL,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> dict:
    """Two-sided test that y rises (``sign = +1``) or falls (``-1``) with x, over the cells with
    both finite. Returns statistic (rho or tau), p_value (two-sided), ci_low / ci_high (bootstrap
    over cells at ``level``), n, status and reason. The rule:

    - not testable: fewer than ``min_cells`` (4) cells, or x or y constant;
    - reproduced: the statistic has the predicted sign and p < ``alpha`` (0.05);
    - not reproduced: the opposite sign with p < alpha, or a CI entirely on the opposite side of 0
      (it excludes the predicted direction);
    - partly: otherwise (no significant trend either way; the sign found is in ``reason``).
    Rank statistics: a monotone transform of x or y (e.g. a log) changes nothing."""
    if method not in METHODS:
        raise ValueError(f"method: got {method!r}; allowed: {', '.join(METHODS)}")
    if sign not in (1, -1):
        raise ValueError(f"sign: got {sign!r}; allowed: 1, -1")
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out = {
        "method": method,
        "n": int(x.size),
        "statistic": np.nan,
        "p_value": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "alpha": alpha,
        "level": level,
        "sign": sign,
    }
    if x.size < min_cells:
        return {**out, "status": "not testable", "reason": f"{x.size} cells with finite values < {min_cells}"}
    if np.unique(x).size < 2 or np.unique(y).size < 2:
        return {
            **out,
            "status": "not testable",
            "reason": "the predictor or the measured value is constant over the cells",
        }
    stat, p = _statistic(x, y, method, seed)
    lo, hi = _boot_ci(x, y, method, level, n_boot, seed)
    out.update(statistic=stat, p_value=p, ci_low=lo, ci_high=hi)
    right = np.sign(stat) == sign
    opposite_ci = (hi < 0) if sign > 0 else (lo > 0)
    if right and p < alpha:
        return {**out, "status": "reproduced", "reason": f"predicted sign, p = {p:.3g} < {alpha}"}
    if (not right and stat != 0 and p < alpha) or opposite_ci:
        return {**out, "status": "not reproduced", "reason": f"opposite sign, p = {p:.3g}, CI [{lo:+.2f}, {hi:+.2f}]"}
    return {
        **out,
        "status": "partly",
        "reason": f"no significant trend (statistic {stat:+.2f} has the {'predicted' if right else 'opposite'} sign, "
        "p = {p:.3g})",
    }


def _score_column(runs: pd.DataFrame, metric: str) -> str:
    for c in (metric, f"final_{metric}"):
        if c in runs:
            return c
    raise ValueError(
        f"metric: got {metric!r}, not a runs.csv column; allowed: "
        f"{', '.join(c for c in runs.columns if c.startswith(('final_', 'best_', 'min_', 'avg_')))}"
    )


def log_advantage(runs: pd.DataFrame, focus: str, rival: str, metric: str, level: float = LEVEL) -> pd.DataFrame:
    """Per cell: the tuned medians of ``focus`` and ``rival`` on the runs.csv column ``metric``
    (or ``final_<metric>``; lower is better, diverged runs +inf; tuning by
    :func:`analysis.tune.select`) and advantage = log10(rival / focus) (positive = focus better)."""
    from .tune import select

    col = _score_column(runs, metric)
    r = runs[runs["optimizer"].isin([focus, rival])]
    v = r[col].astype(float).where(r["status"] == "ok", np.inf).fillna(np.inf).rename(metric)
    summary = select(r, v, level)[0]
    a = summary[summary["optimizer"] == focus].set_index("cell_id")["median"]
    b = summary[summary["optimizer"] == rival].set_index("cell_id")["median"].reindex(a.index)
    out = pd.DataFrame(
        {
            "cell_id": a.index,
            "focus": a.to_numpy(),
            "rival": b.to_numpy(),
            "advantage": -log10_ratio(a.to_numpy(), b.to_numpy()),
        }
    )
    return out.reset_index(drop=True)
