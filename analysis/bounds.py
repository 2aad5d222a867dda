"""The engine of the bound rules: does a method's tuned quantity Q decay no slower than T^p?

The theorems of the seed papers are UPPER BOUNDS on a named quantity (an ergodic average, a best
iterate, E sqrt(gap); ../shared/PAPERS.md) after a budget of T steps, for the best constants the
theorem allows. The lab's test of "Q(T) = O(T^p)" is therefore:

1. **Horizon scan** (:func:`horizon_scan`): a geometric grid of horizons T_k. With a horizon-free
   schedule (constant lr, or eta_t = eta t^-p) the first T steps of a run to T_max are exactly a
   run of budget T, so Q(T_k) is read from curves.csv at step T_k (``horizon = "logged"``; Q is a
   per-step accumulator such as a running mean or running min, whose value at step T is the
   quantity of the budget-T run). Where the schedule needs the horizon (cosine, linear), each
   horizon is its own run: ``horizon = "<column>"`` groups runs.csv by that column and reads each
   run's final value. A run that diverged at step t_d counts as +inf at every T >= t_d (the loop
   freezes it, so its later values are not those of a budget-T run).
2. **Tuned per horizon**: at every T_k, for each (cell, optimizer), the hyperparameter point with
   the smallest median over seeds of Q(T_k) (ties: the smaller lr); each point of the scan is the
   best the method does with that budget. A horizon whose optimum is at an end of the lr grid is
   flagged (``lr_at_edge``) and, by option, left out of the fit.
3. **Exponent** (:func:`exponents`): least-squares slope of log10 Q_tuned(T) against log10 T over
   the horizons of the fit window, with a percentile bootstrap CI over seeds: resample the seeds
   with replacement (the same seed indices for every hyperparameter point, since seed s is the
   same instance and noise for all of them), re-tune at every T within the resample, refit.
   The fit set (which horizons, edge exclusions) is fixed by the full data.
4. **Verdicts** (:func:`bound_verdict`, :func:`tight_verdict`) are one-sided and two-sided tests of
   that CI against the bound's exponent p.
5. **Robustness** (:func:`window_exponents`, :func:`lr_neighbour_exponents`): the same exponent on
   sub-windows of the horizon range, and the exponent of the un-tuned curves at the tuned lr and
   its two lr-grid neighbours. Reported, never used by the verdict.

Pure functions of DataFrames: no file I/O, no figures. The one log-log fit of the lab
(:func:`analysis.stats.loglog_fits`) does every fit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .stats import LEVEL, N_RESAMPLES, loglog_fits
from .bound_verdicts import (  # noqa: F401  (re-exported: the engine's verdicts)
    CONSISTENT,
    FASTER,
    NOT_TIGHT,
    SLOWER,
    TIGHT,
    UNDECIDED,
    UNDEFINED,
    bound_verdict,
    tight_verdict,
)
from .bound_verdicts import TOL as BOUND_TOL

HORIZON_SCHEDULES = ("cosine", "linear")  # lr schedules that need the horizon (runners/schedules.py NEEDS_HORIZON)
PER_DECADE = 4
DECADES = 2.0  # default scan: the last two decades of logged steps
MIN_HORIZONS = 4
TOL = BOUND_TOL  # the default band around a bound's exponent (analysis.bound_verdicts)
_CHUNK = 256  # bootstrap resamples evaluated at once


@dataclass
class Group:
    """One (cell, optimizer) of a scan. ``Q[p, s, k]``: the quantity of hyperparameter point p,
    seed s at horizon ``T[k]`` (+inf: diverged by then; NaN: no such run). ``points`` holds the
    h_ columns of each point (sorted by lr, so that ties go to the smaller lr); ``lr_edge[p]``
    is "low" / "high" where point p's lr is the smallest / largest of the grid, else ""."""

    key: dict
    T: np.ndarray
    Q: np.ndarray
    points: pd.DataFrame
    seeds: np.ndarray
    lr_edge: np.ndarray


@dataclass
class Scan:
    quantity: str
    horizon: str
    groups: list


# --- the grid of horizons ---------------------------------------------------------------------
def geometric_horizons(
    steps, t_min: float | None = None, t_max: float | None = None, per_decade: int = PER_DECADE
) -> np.ndarray:
    """The logged steps in [t_min, t_max] thinned to a geometric grid of ``per_decade`` points per
    decade: targets t_max * 10^(-j / per_decade), j = 0, 1, ... while >= t_min, each replaced by
    the logged step nearest to it in log (duplicates dropped). Defaults: t_max = the last logged
    step, t_min = t_max / 10^2 (the last two decades)."""
    s = np.unique(np.asarray(steps, float))
    s = s[s > 0]
    if s.size == 0:
        return s
    hi = float(s.max()) if t_max is None else float(t_max)
    lo = hi / 10**DECADES if t_min is None else float(t_min)
    s = s[(s >= lo * (1 - 1e-9)) & (s <= hi * (1 + 1e-9))]
    if s.size == 0 or per_decade < 1:
        return s
    n = int(np.floor(per_decade * np.log10(hi / lo) + 1e-9)) + 1
    targets = hi * 10.0 ** (-np.arange(n) / per_decade)
    pick = np.abs(np.log10(s)[None, :] - np.log10(targets)[:, None]).argmin(axis=1)
    return np.unique(s[pick])


# --- building the scan ------------------------------------------------------------------------
def _value_column(runs: pd.DataFrame, quantity: str) -> str:
    for c in (quantity, f"final_{quantity}"):
        if c in runs:
            return c
    cols = [c for c in runs.columns if c.startswith(("final_", "min_", "avg_", "best_"))]
    raise ValueError(f"quantity: got {quantity!r}, not a runs.csv column; allowed: {', '.join(cols) or '(none)'}")


def _lr_edges(points: pd.DataFrame) -> np.ndarray:
    if "h_lr" not in points or points["h_lr"].nunique() < 2:
        return np.full(len(points), "", object)
    lr = points["h_lr"].to_numpy(float)
    return np.where(
        np.isclose(lr, lr.min(), rtol=1e-9), "low", np.where(np.isclose(lr, lr.max(), rtol=1e-9), "high", "")
    ).astype(object)


def _group(runs: pd.DataFrame, key: dict, T: np.ndarray, values: pd.DataFrame, hcols: list) -> Group:
    """``values``: one row per (run, horizon) with columns point, seed, k, v."""
    pts = runs.drop_duplicates("point").sort_values("point")[["point", *hcols]].reset_index(drop=True)
    seeds = np.sort(runs["seed"].unique())
    Q = np.full((len(pts), len(seeds), len(T)), np.nan)
    Q[values["point"].to_numpy(int), np.searchsorted(seeds, values["seed"].to_numpy()), values["k"].to_numpy(int)] = (
        values["v"].to_numpy(float)
    )
    return Group(
        key=key, T=np.asarray(T, float), Q=Q, points=pts.drop(columns="point"), seeds=seeds, lr_edge=_lr_edges(pts)
    )


def _points(g: pd.DataFrame, hcols: list) -> pd.Series:
    order = (["h_lr"] if "h_lr" in hcols else []) + [
        c for c in hcols if c != "h_lr"
    ]  # lr first: ties go to the smaller lr
    if not order:
        return pd.Series(0, index=g.index)
    return g.groupby(order, dropna=False, sort=True).ngroup()


def horizon_scan(
    runs: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    quantity: str = "avg_grad_fro",
    horizon: str = "logged",
    horizons=None,
    t_min: float | None = None,
    t_max: float | None = None,
    per_decade: int = PER_DECADE,
) -> Scan:
    """Q(T) per (cell, optimizer), hyperparameter point, seed and horizon (see the module doc).

    ``horizon = "logged"``: Q is the curves.csv column ``quantity`` at the logged steps
    ``horizons`` (default :func:`geometric_horizons` of the steps every run logged, with
    ``t_min`` / ``t_max`` / ``per_decade``); runs' ``diverged_step`` (when present) turns values
    from that step on into +inf (a run whose status is not ok and which records no such step is
    +inf at every horizon); a non-finite value is +inf. The schedule must be horizon-free:
    a runs.csv ``h_lr_schedule`` of cosine or linear is an error. ``horizon = "<column>"`` (an
    h_ or p_ column of runs.csv, e.g. ``h_horizon``): Q is each run's final value (runs.csv
    ``quantity`` or ``final_<quantity>``, +inf unless status is ok) and the horizons are the
    values of that column; an h_ column is not tuned over, a p_ column is not part of the cell.
    """
    runs = runs.copy()
    if horizon == "logged":
        if curves is None:
            raise ValueError("horizon_scan: horizon = 'logged' needs curves.csv")
        if quantity not in curves:
            allowed = [c for c in curves.columns if c not in ("run_id", "step")]
            raise ValueError(f"quantity: got {quantity!r}, not a curves.csv column; allowed: {', '.join(allowed)}")
        if "h_lr_schedule" in runs and runs["h_lr_schedule"].isin(HORIZON_SCHEDULES).any():
            raise ValueError(
                "horizon: got 'logged' for a schedule that needs the horizon (h_lr_schedule = cosine/linear); "
                "allowed: a horizon column (e.g. h_horizon) for such sweeps"
            )
        c = curves[curves["run_id"].isin(runs["run_id"]) & (curves["step"] > 0)]
        per_run = c.groupby("step")["run_id"].nunique()
        common = per_run.index[per_run == runs["run_id"].nunique()].to_numpy(float)
        T = (
            geometric_horizons(common, t_min, t_max, per_decade)
            if horizons is None
            else np.unique(np.asarray(horizons, float))
        )
        missing = sorted(set(T) - set(common))
        if missing:
            raise ValueError(
                f"horizons: got {missing[:5]} that not every run logged; allowed: logged steps such as "
                f"{list(common[-5:])}"
            )
        c = c[c["step"].isin(T)]
        v = c[quantity].astype(float).where(np.isfinite(c[quantity].astype(float)), np.inf)
        vals = pd.DataFrame(
            {
                "run_id": c["run_id"].to_numpy(),
                "k": np.searchsorted(T, c["step"].to_numpy(float)),
                "v": v.to_numpy(),
                "step": c["step"].to_numpy(float),
            }
        )
        info = runs.set_index("run_id")
        ds = (
            vals["run_id"].map(info["diverged_step"]).astype(float)
            if "diverged_step" in runs
            else pd.Series(np.nan, index=vals.index)
        )
        vals.loc[(ds >= 0) & (vals["step"] >= ds), "v"] = np.inf
        if "status" in runs:  # not ok with no divergence step on record: no horizon of it counts
            vals.loc[(vals["run_id"].map(info["status"]) != "ok") & ~(ds >= 0), "v"] = np.inf
        hcols = [h for h in runs.columns if h.startswith("h_")]
        keys = ["cell_id", "optimizer"]
    else:
        if horizon not in runs:
            raise ValueError(
                f"horizon: got {horizon!r}; allowed: 'logged' or a runs.csv column "
                f"({', '.join(c for c in runs.columns if c.startswith(('h_', 'p_')))})"
            )
        col = _value_column(runs, quantity)
        T = np.unique(runs[horizon].astype(float).to_numpy())
        v = runs[col].astype(float)
        v = (
            v.where((runs["status"] == "ok") & np.isfinite(v), np.inf)
            if "status" in runs
            else v.where(np.isfinite(v), np.inf)
        )
        vals = pd.DataFrame(
            {
                "run_id": runs["run_id"].to_numpy(),
                "k": np.searchsorted(T, runs[horizon].astype(float).to_numpy()),
                "v": v.to_numpy(),
            }
        )
        hcols = [h for h in runs.columns if h.startswith("h_") and h != horizon]
        keys = [
            *(
                [c for c in runs.columns if c.startswith("p_") and c != horizon]
                if horizon.startswith("p_")
                else ["cell_id"]
            ),
            "optimizer",
        ]
    groups = []
    for k, g in runs.groupby(keys, sort=True, dropna=False):
        k = k if isinstance(k, tuple) else (k,)
        g = g.assign(point=_points(g, hcols).to_numpy())
        gv = vals[vals["run_id"].isin(g["run_id"])].merge(g[["run_id", "point", "seed"]], on="run_id")
        groups.append(_group(g, dict(zip(keys, k)), T, gv, hcols))
    return Scan(quantity=quantity, horizon=horizon, groups=groups)


# --- tuning and fitting -----------------------------------------------------------------------
def _medians(Q: np.ndarray) -> np.ndarray:
    """Median over the seed axis (-2) ignoring missing runs; +inf where a point has none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.nanmedian(Q, axis=-2)
    return np.where(np.isnan(m), np.inf, m)


def _tuned(Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(best point index, tuned median) per horizon; Q has shape (..., P, S, K)."""
    med = _medians(Q)  # (..., P, K)
    best = np.argmin(med, axis=-2)  # first minimum: points are sorted by lr
    return best, np.take_along_axis(med, best[..., None, :], axis=-2)[..., 0, :]


def _resampled(Q: np.ndarray, n_resamples: int, seed: int):
    """Yield Q with resampled seeds, shape (b, P, S, K), in chunks; the same seed indices for
    every point (seed s is the same instance and noise for every point)."""
    S = Q.shape[1]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, S, size=(n_resamples, S))
    for i in range(0, n_resamples, _CHUNK):
        yield np.moveaxis(Q[:, idx[i : i + _CHUNK], :], 1, 0)


def _slopes(T: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope and intercept of log10 V[r] vs log10 T for each row r (stats.loglog_fits)."""
    R, K = V.shape
    fits = loglog_fits(np.repeat(np.arange(R), K), np.tile(T, R), V.reshape(-1)).reindex(np.arange(R))
    return fits["slope"].to_numpy(float), fits["intercept"].to_numpy(float)


def _ci(x: np.ndarray, level: float) -> tuple[float, float, int]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.nan, np.nan, 0
    a = (1 - level) / 2
    return float(np.quantile(x, a)), float(np.quantile(x, 1 - a)), int(x.size)


def _boot(Q: np.ndarray, T: np.ndarray, fit: np.ndarray, n_resamples: int, seed: int, fixed: int | None = None):
    """Bootstrap over seeds: per resample the tuned (or, with ``fixed``, that point's) median at
    every horizon, and the slope over the horizons ``fit``. Returns (values (B, K), slopes (B,))."""
    vals, slopes = [], []
    for Qb in _resampled(Q, n_resamples, seed):
        v = _medians(Qb[:, fixed]) if fixed is not None else _tuned(Qb)[1]
        vals.append(v)
        slopes.append(_slopes(T[fit], v[:, fit])[0] if fit.sum() else np.full(len(v), np.nan))
    return np.concatenate(vals), np.concatenate(slopes)


def _in_window(T: np.ndarray, window) -> np.ndarray:
    if window is None:
        return np.ones(len(T), bool)
    lo, hi = window
    return (T >= float(lo) * (1 - 1e-9)) & (T <= float(hi) * (1 + 1e-9))


def _exponent(g: Group, window, exclude_edge: bool, level: float, n_resamples: int, seed: int, min_horizons: int):
    """(per-horizon rows, fit row) of one group."""
    best, med = _tuned(g.Q)
    edge = g.lr_edge[best]
    fit = _in_window(g.T, window) & np.isfinite(med) & (med > 0)
    if exclude_edge:
        fit &= edge == ""
    vals, slopes = _boot(g.Q, g.T, fit, n_resamples, seed)
    rows = []
    for k, t in enumerate(g.T):
        lo, hi, _ = _ci(vals[:, k], level) if np.isfinite(med[k]) else (np.inf, np.inf, 0)
        rows.append(
            {
                **g.key,
                "T": t,
                **g.points.iloc[best[k]].to_dict(),
                "median": med[k],
                "ci_low": lo,
                "ci_high": hi,
                "n_seeds": int((~np.isnan(g.Q[best[k], :, k])).sum()),
                "lr_at_edge": edge[k] != "",
                "lr_edge": edge[k],
                "in_fit": bool(fit[k]),
            }
        )
    n_fit = int(fit.sum())
    slope, icpt = (
        _slopes(g.T[fit], med[fit][None, :]) if n_fit >= min_horizons else (np.array([np.nan]), np.array([np.nan]))
    )
    lo, hi, nv = _ci(slopes, level) if n_fit >= min_horizons else (np.nan, np.nan, 0)
    in_w = _in_window(g.T, window)
    row = {
        **g.key,
        "slope": float(slope[0]),
        "slope_ci_low": lo,
        "slope_ci_high": hi,
        "intercept": float(icpt[0]),
        "n_horizons": n_fit,
        "n_edge": int((in_w & (edge != "")).sum()),
        "n_window": int(in_w.sum()),
        "fit_lo": float(g.T[fit].min()) if n_fit else np.nan,
        "fit_hi": float(g.T[fit].max()) if n_fit else np.nan,
        "n_seeds": len(g.seeds),
        "n_resamples": n_resamples,
        "n_resamples_finite": nv,
        "level": level,
    }
    return rows, row


def exponents(
    scan: Scan,
    window=None,
    exclude_edge: bool = True,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    min_horizons: int = MIN_HORIZONS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tuned, fits) of a scan.

    ``tuned``: one row per (group, T): the tuned point's h_ values, ``median`` of Q over seeds,
    its percentile bootstrap CI (``ci_low`` / ``ci_high``, the tuned median of each seed
    resample, re-tuned), ``lr_at_edge`` / ``lr_edge``, ``in_fit``.
    ``fits``: one row per group: ``slope`` of log10 Q_tuned vs log10 T over the horizons in
    ``window`` = (lo, hi) (default all) with a finite tuned Q (and, with ``exclude_edge``, an
    interior tuned lr), its CI at ``level`` from ``n_resamples`` seed resamples (RNG seed
    ``seed``; resample the seeds, re-tune at every T, refit), ``n_horizons`` fitted (NaN slope
    below ``min_horizons``), ``n_edge`` (edge horizons in the window), ``fit_lo`` / ``fit_hi``.
    Defaults: level 0.95, 999 resamples, seed 0, min_horizons 4."""
    tuned, fits = [], []
    for g in scan.groups:
        rows, row = _exponent(g, window, exclude_edge, level, n_resamples, seed, min_horizons)
        tuned += rows
        fits.append({**row, "quantity": scan.quantity})
    return pd.DataFrame(tuned), pd.DataFrame(fits)


def default_windows(T: np.ndarray) -> list[tuple[str, float, float]]:
    """Sub-windows of the horizon range [a, b]: the lower and upper halves in log
    ([a, sqrt(ab)], [sqrt(ab), b]) and, when the range spans more than a decade, the first
    half-decade [a, 10^0.5 a] and the last decade [b / 10, b] (each left out where it repeats
    a half: on a two-decade range the last decade is the upper half)."""
    T = np.asarray(T, float)
    a, b = float(T.min()), float(T.max())
    mid = float(np.sqrt(a * b))
    out = [("lower half", a, mid), ("upper half", mid, b)]
    if b > 10 * a * (1 + 1e-9):
        for w in (("first half-decade", a, a * 10**0.5), ("last decade", b / 10, b)):
            if not any(np.isclose(w[1], o[1]) and np.isclose(w[2], o[2]) for o in out):
                out.append(w)
    return out


def window_exponents(
    scan: Scan,
    windows=None,
    exclude_edge: bool = True,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    min_horizons: int = 3,
) -> pd.DataFrame:
    """The tuned-per-horizon exponent (as :func:`exponents`) on each window of ``windows``
    (a list of (label, lo, hi); default :func:`default_windows` of each group's horizons), with
    at least ``min_horizons`` (default 3) horizons per window. One row per (group, window); a
    window holding the same horizons as an earlier one is left out."""
    rows = []
    for g in scan.groups:
        seen = set()
        for label, lo, hi in windows or default_windows(g.T):
            horizons = tuple(np.flatnonzero(_in_window(g.T, (lo, hi))))
            if horizons in seen:  # the same horizons as an earlier window: the same fit
                continue
            seen.add(horizons)
            _, row = _exponent(g, (lo, hi), exclude_edge, level, n_resamples, seed, min_horizons)
            rows.append(
                {
                    **g.key,
                    "window": label,
                    "lo": lo,
                    "hi": hi,
                    **{k: row[k] for k in ("slope", "slope_ci_low", "slope_ci_high", "n_horizons")},
                }
            )
    return pd.DataFrame(rows)


def lr_neighbour_exponents(
    scan: Scan,
    window=None,
    at: float | None = None,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    min_horizons: int = 3,
) -> pd.DataFrame:
    """Exponent of the un-tuned curve median_s Q(p, s, T) over the horizons in ``window`` for the
    point p tuned at horizon ``at`` (default: the largest horizon in the window) and for the
    points with the next smaller and next larger lr of the grid (other hyperparameters equal),
    with the bootstrap CI over seeds. One row per (group, which) with which in ("lower lr",
    "tuned lr", "upper lr"); a neighbour beyond the grid is left out."""
    rows = []
    for g in scan.groups:
        w = _in_window(g.T, window)
        if not w.any():
            continue
        k = int(np.flatnonzero(w)[-1]) if at is None else int(np.argmin(np.abs(np.log10(g.T / float(at)))))
        best = int(_tuned(g.Q)[0][k])
        pts = g.points
        others = [c for c in pts.columns if c != "h_lr"]
        same = np.ones(len(pts), bool)
        for c in others:
            same &= (pts[c] == pts[c].iloc[best]).to_numpy() | (pts[c].isna() & pd.isna(pts[c].iloc[best])).to_numpy()
        cand = np.flatnonzero(same)
        lrs = pts["h_lr"].to_numpy(float) if "h_lr" in pts else np.zeros(len(pts))
        cand = cand[np.argsort(lrs[cand], kind="stable")]
        pos = int(np.flatnonzero(cand == best)[0])
        for which, off in (("lower lr", -1), ("tuned lr", 0), ("upper lr", 1)):
            if not 0 <= pos + off < len(cand):
                continue
            p = int(cand[pos + off])
            med = _medians(g.Q[p])
            fit = w & np.isfinite(med) & (med > 0)
            slope = _slopes(g.T[fit], med[fit][None, :])[0][0] if fit.sum() >= min_horizons else np.nan
            _, bs = _boot(g.Q, g.T, fit, n_resamples, seed, fixed=p)
            lo, hi, _ = _ci(bs, level) if fit.sum() >= min_horizons else (np.nan, np.nan, 0)
            rows.append(
                {
                    **g.key,
                    "which": which,
                    "h_lr": lrs[p],
                    "tuned_at": float(g.T[k]),
                    "slope": float(slope),
                    "slope_ci_low": lo,
                    "slope_ci_high": hi,
                    "n_horizons": int(fit.sum()),
                }
            )
    return pd.DataFrame(rows)
