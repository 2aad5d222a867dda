"""Rate fits: the exponent p in metric ~ C * t^p, fitted by least squares on log10-log10 axes.

Two views:
- *vs step* (:func:`fit_curves`): one run's logged curve on a window of steps [t0, t1]. This is
  the anytime rate; it matches a theorem's T-rate only for horizon-free schedules (seed 000's
  Muon-MVR2 result is stated for such schedules).
- *vs horizon T* (:func:`fit_vs_horizon`): the final metric of runs with different horizons T
  (each tuned for its own T), one fit per seed across T. This is the rate the theorems state.

Either way the CI comes from seeds: one exponent per seed, then the median with its bootstrap CI
(:func:`analysis.stats.median_ci`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import LEVEL, loglog_fit, loglog_fits, median_ci
from .theory import reference_slope

METRICS = ("gap", "grad_fro", "grad_nuc", "grad_op", "dist_fro")


fit_exponent = loglog_fit  # slope of log10 v vs log10 t (analysis.stats.loglog_fit)


def default_window(steps) -> tuple[float, float]:
    """The last decade of the run: [T/10, T]."""
    top = float(np.max(steps))
    return max(1.0, top / 10.0), top


def fit_curves(
    curves: pd.DataFrame, chosen: pd.DataFrame, metric: str = "gap", window: tuple[float, float] | None = None
) -> pd.DataFrame:
    """One exponent per run of ``chosen`` (run_id, cell_id, optimizer, seed, status): the slope of
    log ``metric`` vs log step on ``window`` (default: :func:`default_window`). Diverged runs are
    not fitted."""
    if metric not in curves:
        raise ValueError(
            f"rates: curves.csv has no column {metric!r}; allowed: "
            f"{', '.join(c for c in curves.columns if c not in ('run_id', 'step'))}"
        )
    lo, hi = window or default_window(curves["step"])
    ok = chosen[chosen["status"] == "ok"] if "status" in chosen else chosen
    c = curves[curves["run_id"].isin(ok["run_id"]) & (curves["step"] >= lo) & (curves["step"] <= hi)]
    fits = loglog_fits(c["run_id"].to_numpy(), c["step"].to_numpy(), c[metric].to_numpy())
    keys = [k for k in ok.columns if k not in ("status", "score")]
    out = ok[keys].copy()
    out["slope"] = out["run_id"].map(fits["slope"])
    out["intercept"] = out["run_id"].map(fits["intercept"])
    out["n_points"] = out["run_id"].map(fits["n"]).fillna(0).astype(int)
    out["metric"], out["window_lo"], out["window_hi"] = metric, lo, hi
    return out


def rate_table(
    fits: pd.DataFrame, kinds: dict[str, str] | None = None, level: float = LEVEL, keys: tuple[str, ...] = ("cell_id",)
) -> pd.DataFrame:
    """Median exponent over seeds with its bootstrap CI per (cell, optimizer), and the reference
    exponent of the theory for that optimizer kind and metric (NaN where the seeds state none)."""
    rows = []
    for k, g in fits.groupby([*keys, "optimizer"], sort=True):
        s = g["slope"].dropna().to_numpy(float)
        rows.append(
            {
                **dict(zip([*keys, "optimizer"], k)),
                "metric": g["metric"].iloc[0],
                "window_lo": g["window_lo"].iloc[0],
                "window_hi": g["window_hi"].iloc[0],
                "samples": s,
                "n_seeds": len(s),
                "intercept": float(np.median(g["intercept"].dropna())) if len(s) else np.nan,
            }
        )
    if not rows:
        return pd.DataFrame(columns=[*keys, "optimizer", "metric", "slope", "slope_ci_low", "slope_ci_high", "n_seeds"])
    df = pd.DataFrame(rows)
    ok = df["n_seeds"] > 0
    med, lo, hi = np.full(len(df), np.nan), np.full(len(df), np.nan), np.full(len(df), np.nan)
    if ok.any():
        m, l, h = median_ci(list(df.loc[ok, "samples"]), level)
        med[ok.to_numpy()], lo[ok.to_numpy()], hi[ok.to_numpy()] = m, l, h
    df["slope"], df["slope_ci_low"], df["slope_ci_high"] = med, lo, hi
    ref = [reference_slope((kinds or {}).get(o, o), m) for o, m in zip(df["optimizer"], df["metric"])]
    df["reference_slope"] = [r[0] for r in ref]
    df["reference_source"] = [r[1] for r in ref]
    return df.drop(columns=["samples"])


def fit_vs_horizon(
    table: pd.DataFrame, horizon: str, value: str, keys: tuple[str, ...] = ("optimizer",), level: float = LEVEL
) -> pd.DataFrame:
    """Exponent of ``value`` against the horizon column ``horizon`` across runs: for each group
    of ``keys`` and each seed, the log-log slope over the horizons, then the median over seeds with
    its bootstrap CI. ``table`` holds one row per run (already tuned per horizon), with ``seed``."""
    rows = []
    for k, g in table.groupby(list(keys), sort=True):
        k = k if isinstance(k, tuple) else (k,)
        slopes = [fit_exponent(s[horizon], s[value])[0] for _, s in g.groupby("seed")]
        slopes = np.array([s for s in slopes if np.isfinite(s)])
        rows.append(
            {**dict(zip(keys, k)), "samples": slopes, "n_seeds": len(slopes), "n_horizons": g[horizon].nunique()}
        )
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    ok = (df["n_seeds"] > 0).to_numpy()
    med, lo, hi = np.full(len(df), np.nan), np.full(len(df), np.nan), np.full(len(df), np.nan)
    if ok.any():
        med[ok], lo[ok], hi[ok] = median_ci(list(df.loc[ok, "samples"]), level)
    df["slope"], df["slope_ci_low"], df["slope_ci_high"] = med, lo, hi
    df["horizon"], df["metric"] = horizon, value
    return df.drop(columns=["samples"])
