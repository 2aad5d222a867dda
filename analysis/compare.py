"""Comparisons of two tuned methods that do not hang on one final value (docs/protocol.md,
"Comparisons beyond final values"). Pure functions of DataFrames (runs.csv, curves.csv rows).

- **Time to a target**: per run, the step (and the oracle calls) at which the curve first reaches
  a target, interpolated linearly in (log step, log value) between the two logged points around
  the crossing (so the answer does not snap to the log-spaced logging grid); +inf where it never
  does. Per cell, the two methods' tuned times and the bootstrap CI of log10 of their ratio.
- **Whole tuned curves**: per cell and method, the median over seeds at every logged step with a
  bootstrap band (CI of the median, ``analysis.stats.bootstrap_ci``); at each step, A is
  *separated below* B when A's band lies strictly below B's, *above* when strictly above. A cell
  is a **trade-off** when A is separated below for a qualifying stretch of steps and above for
  another (curves that cross beyond noise); bands that only overlap are a **tie**, never a
  trade-off. A stretch qualifies when it holds at least ``min_points`` consecutive logged steps
  spanning at least ``min_decades`` decades of steps.
- **Regions**: connected components (4-neighbour) of equal outcome on a 2-D grid of cells
  (``scipy.ndimage.label``).
- **A constant ratio**: whether one constant c puts every cell's CI of the tuned log-ratio in
  log10 c +- tol, and a bootstrap (over seeds) CI of the slope of the log-ratio along an axis.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import ndimage

from .stats import BIG, LEVEL, N_RESAMPLES, TINY, bootstrap_ci, log10_ratio, log10_ratio_ci

TRADE_OFF, TIE = "trade-off", "tie"


# --- per-seed curves of the tuned points --------------------------------------------------------
def seed_matrix(curves: pd.DataFrame, chosen: pd.DataFrame, metric: str = "gap") -> dict:
    """``{(cell_id, optimizer): (steps (K,), seeds (S,), values (S, K))}`` of the tuned runs
    (``chosen``: run_id, cell_id, optimizer, seed, as ``analysis.tune.select`` returns it).
    Non-finite values (a diverged run) become +inf. Only the steps every run logged are kept."""
    c = curves[curves["run_id"].isin(chosen["run_id"])][["run_id", "step", metric]]
    c = c.merge(chosen[["run_id", "cell_id", "optimizer", "seed"]], on="run_id")
    out = {}
    for key, g in c.groupby(["cell_id", "optimizer"], sort=True):
        w = g.pivot_table(index="seed", columns="step", values=metric, aggfunc="first").dropna(axis=1)
        v = w.to_numpy(float)
        out[key] = (w.columns.to_numpy(float), w.index.to_numpy(), np.where(np.isfinite(v), v, np.inf))
    return out


def bands(values: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median over seeds (axis 0) at every step with its bootstrap CI: (median, low, high), each (K,)."""
    x = np.asarray(values, float).T  # (K, S): one group per step
    lo, hi = bootstrap_ci(x, level=level)
    med = np.median(np.minimum(x, BIG), axis=1)
    return np.where(med >= BIG / 10, np.inf, med), lo, hi


def separation(a_lo, a_hi, b_lo, b_hi) -> np.ndarray:
    """Per step: -1 where A's band is strictly below B's, +1 strictly above, 0 where they meet."""
    a_lo, a_hi, b_lo, b_hi = (np.asarray(v, float) for v in (a_lo, a_hi, b_lo, b_hi))
    return np.where(a_hi < b_lo, -1, np.where(a_lo > b_hi, 1, 0))


def stretches(sign: np.ndarray, value: int) -> list[tuple[int, int]]:
    """(first, last) index of each maximal run of consecutive entries equal to ``value``."""
    out, start = [], None
    for i, s in enumerate(list(sign) + [None]):
        if s == value and start is None:
            start = i
        elif s != value and start is not None:
            out.append((start, i - 1))
            start = None
    return out


def _qualifies(run: tuple[int, int], steps: np.ndarray, min_points: int, min_decades: float) -> bool:
    i, j = run
    span = math.log10(steps[j] / steps[i]) if steps[i] > 0 else math.inf
    return j - i + 1 >= min_points and span >= min_decades


def curve_outcome(
    steps,
    a_vals,
    b_vals,
    a: str,
    b: str,
    level: float = LEVEL,
    min_points: int = 3,
    min_decades: float = 0.0,
    from_step: float = 1.0,
) -> dict:
    """Outcome of one cell from the per-seed curves of A and B on common ``steps``: ``a`` (A's
    band below B's over a qualifying stretch and never above over one), ``b``, ``trade-off``
    (both) or ``tie`` (neither). Steps before ``from_step`` (step 0: every run starts at the same
    point) are left out. Also the longest qualifying stretch each way (points and decades) and
    the logged steps where the separation changes sign."""
    steps = np.asarray(steps, float)
    keep = steps >= from_step
    steps = steps[keep]
    _, alo, ahi = bands(np.asarray(a_vals)[:, keep], level)
    _, blo, bhi = bands(np.asarray(b_vals)[:, keep], level)
    sign = separation(alo, ahi, blo, bhi)
    res = {}
    for name, value in (("a", -1), ("b", 1)):
        good = [r for r in stretches(sign, value) if _qualifies(r, steps, min_points, min_decades)]
        res[f"{name}_better_points"] = int(max((j - i + 1 for i, j in good), default=0))
        res[f"{name}_better_decades"] = float(max((math.log10(steps[j] / steps[i]) for i, j in good), default=0.0))
        res[f"{name}_better_from"] = float(steps[good[0][0]]) if good else math.nan
    wa, wb = res["a_better_points"] > 0, res["b_better_points"] > 0
    res["outcome"] = TRADE_OFF if wa and wb else a if wa else b if wb else TIE
    nz = sign[sign != 0]
    flips = np.flatnonzero(np.diff(nz) != 0) if nz.size else np.array([], int)
    res["sign_changes"] = int(flips.size)
    res["steps_separated"] = int((sign != 0).sum())
    res["steps_compared"] = int(sign.size)
    return res


def compare_curves(
    curves: pd.DataFrame,
    chosen: pd.DataFrame,
    a: str,
    b: str,
    metric: str = "gap",
    level: float = LEVEL,
    min_points: int = 3,
    min_decades: float = 0.0,
) -> pd.DataFrame:
    """:func:`curve_outcome` of every cell where both methods have tuned runs: one row per cell."""
    mats = seed_matrix(curves, chosen, metric)
    rows = []
    for cell in sorted({k[0] for k in mats}):
        if (cell, a) not in mats or (cell, b) not in mats:
            continue
        sa, seeds_a, va = mats[(cell, a)]
        sb, seeds_b, vb = mats[(cell, b)]
        common = np.intersect1d(sa, sb)
        va = va[:, np.isin(sa, common)]
        vb = vb[:, np.isin(sb, common)]
        rows.append({"cell_id": cell, **curve_outcome(common, va, vb, a, b, level, min_points, min_decades)})
    return pd.DataFrame(rows)


# --- time to a target ---------------------------------------------------------------------------
def crossing_step(steps: np.ndarray, values: np.ndarray, threshold: float) -> float:
    """First time the curve reaches ``threshold``, interpolated linearly in (log10 step, log10
    value) between the last logged point above and the first at or below (linearly in the step
    on a segment that starts at step 0); +inf if never, the first step if already there."""
    v = np.asarray(values, float)
    t = np.asarray(steps, float)
    hit = np.flatnonzero(np.isfinite(v) & (v <= threshold))
    if hit.size == 0:
        return math.inf
    j = int(hit[0])
    if j == 0:
        return float(t[0])
    t0, t1 = t[j - 1], t[j]
    l0, l1, lt = (math.log10(max(x, TINY)) for x in (v[j - 1], v[j], threshold))
    if not np.isfinite(v[j - 1]) or l0 == l1:
        return float(t1)
    f = (l0 - lt) / (l0 - l1)  # in [0, 1]: the fraction of the segment, in log value
    if t0 <= 0:
        return float(t0 + f * (t1 - t0))
    return float(10 ** (math.log10(t0) + f * (math.log10(t1) - math.log10(t0))))


def times_to_target(curves: pd.DataFrame, thresholds: pd.Series, metric: str = "gap") -> pd.Series:
    """:func:`crossing_step` of every run in ``thresholds`` (index run_id -> threshold value)."""
    c = curves[curves["run_id"].isin(thresholds.index)].sort_values(["run_id", "step"], kind="stable")
    out = {
        rid: crossing_step(g["step"].to_numpy(), g[metric].to_numpy(), float(thresholds[rid]))
        for rid, g in c.groupby("run_id", sort=False)
    }
    return pd.Series(out, name="time_to_target", dtype=float).reindex(thresholds.index, fill_value=math.inf)


def pair_ratios(per_seed: pd.DataFrame, a: str, b: str, level: float = LEVEL) -> pd.DataFrame:
    """Per cell, from per-seed rows (cell_id, optimizer, seed, value; lower is better): the
    medians of ``a`` and ``b``, log10(median a / median b) and its bootstrap CI (seeds paired
    where both have the same seeds: common random numbers), and the outcome (``a`` / ``b`` when
    the CI excludes 0, else ``tie``)."""
    rows, ga, gb = [], [], []
    for cell, g in per_seed.groupby("cell_id", sort=True):
        xa = g[g["optimizer"] == a].sort_values("seed")
        xb = g[g["optimizer"] == b].sort_values("seed")
        if xa.empty or xb.empty:
            continue
        ga.append(xa["value"].to_numpy(float))
        gb.append(xb["value"].to_numpy(float))
        rows.append(
            {
                "cell_id": cell,
                "paired": list(xa["seed"]) == list(xb["seed"]),
                f"median_{a}": float(np.median(ga[-1])),
                f"median_{b}": float(np.median(gb[-1])),
            }
        )
    out = pd.DataFrame(rows, columns=["cell_id", "paired", f"median_{a}", f"median_{b}"])
    if out.empty:
        return out.assign(log10_ratio=[], ci_low=[], ci_high=[], outcome=[])
    lo, hi = log10_ratio_ci(ga, gb, level, list(out["paired"]))
    out["log10_ratio"] = log10_ratio(out[f"median_{a}"], out[f"median_{b}"])
    out["ci_low"], out["ci_high"] = lo, hi
    out["outcome"] = np.where(out["ci_high"] < 0, a, np.where(out["ci_low"] > 0, b, TIE))
    return out


# --- regions on a 2-D grid ----------------------------------------------------------------------
def label_grid(table: pd.DataFrame, x: str, y: str, col: str = "outcome") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xs, ys, grid): the sorted values of columns ``x`` and ``y`` and the (len(ys), len(xs))
    object array of ``col`` at each (y, x) (None where no cell)."""
    xs = np.sort(table[x].unique())
    ys = np.sort(table[y].unique())
    grid = np.full((len(ys), len(xs)), None, dtype=object)
    for _, r in table.iterrows():
        grid[np.searchsorted(ys, r[y]), np.searchsorted(xs, r[x])] = r[col]
    return xs, ys, grid


def regions(grid: np.ndarray, xs=None, ys=None) -> list[dict]:
    """Connected components (4-neighbour: sharing an edge on the grid) of equal labels, largest
    first within each label: ``{"label", "size", "cells": [(x, y), ...]}``."""
    four = ndimage.generate_binary_structure(2, 1)
    xs = np.arange(grid.shape[1]) if xs is None else xs
    ys = np.arange(grid.shape[0]) if ys is None else ys
    out = []
    for lab in sorted({v for v in grid.ravel() if v is not None}, key=str):
        comp, n = ndimage.label(grid == lab, structure=four)
        for k in range(1, n + 1):
            iy, ix = np.nonzero(comp == k)
            cells = sorted((float(xs[i]), float(ys[j])) for i, j in zip(ix, iy))
            out.append({"label": lab, "size": len(cells), "cells": cells})
    return sorted(out, key=lambda r: (str(r["label"]), -r["size"]))


# --- a constant ratio ---------------------------------------------------------------------------
def constant_band(lo: np.ndarray, hi: np.ndarray, tol: float) -> tuple[float, float]:
    """The interval of log10 c for which every [lo_i, hi_i] lies within [log10 c - tol, log10 c
    + tol]: [max hi - tol, min lo + tol] (empty when the first end exceeds the second)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return float(np.max(hi) - tol), float(np.min(lo) + tol)


def _slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of y (..., C) against x (C,) along the last axis."""
    xc = x - x.mean()
    return ((y - y.mean(axis=-1, keepdims=True)) * xc).sum(axis=-1) / (xc**2).sum()


def ratio_trend(
    x, a: np.ndarray, b: np.ndarray, level: float = LEVEL, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> tuple[float, float, float]:
    """Slope of log10(median a / median b) against ``x`` across cells, with a percentile
    bootstrap CI over seeds: ``a``, ``b`` are (C cells, S seeds) per-seed scores, the same seeds
    in every cell and both methods (common random numbers), so one resample of seed indices is
    applied to every cell and both methods (cells are not resampled: they are the design).
    (``stats.bootstrap_ci`` resamples each group on its own; here the statistic spans groups.)"""
    x = np.asarray(x, float)
    a, b = np.minimum(np.asarray(a, float), BIG), np.minimum(np.asarray(b, float), BIG)
    point = float(_slope(x, log10_ratio(np.median(a, 1), np.median(b, 1))))
    s = a.shape[1]
    if s < 2:
        return point, point, point
    idx = np.random.default_rng(seed).integers(0, s, size=(n_resamples, s))
    ma, mb = np.median(a[:, idx], axis=-1).T, np.median(b[:, idx], axis=-1).T  # (n, C)
    slopes = _slope(x, log10_ratio(ma, mb))
    slopes = slopes[np.isfinite(slopes)]
    q = (1 - level) / 2
    return point, float(np.quantile(slopes, q)), float(np.quantile(slopes, 1 - q))
