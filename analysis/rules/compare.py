"""Claim rules built on :mod:`analysis.compare`: ``time_to_target``, ``curves_cross``,
``regions`` and ``ratio_constant`` (docs/protocol.md). Each is ``fn(data, **params) -> (status,
text, numbers)`` with ``data.table("runs" | "curves" | "summary")``; the methods are tuned by the
lab's one tuning path (``analysis.tune.select``: median over seeds per hyperparameter point) on
the sweep's criterion (summary.csv ``criterion``) unless a rule says otherwise. Rules never draw.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import compare
from ..stats import LEVEL
from ..tune import NEEDS_CURVES, criterion, select as tune_select
from . import register
from .common import combine as _combine, select as _where


def _r(x, nd: int = 3):
    x = float(x)
    if not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return float(f"{x:.{nd}g}")


def _cells(data) -> pd.DataFrame:
    runs = data.table("runs")
    return runs[["cell_id", *[c for c in runs.columns if c.startswith("p_")]]].drop_duplicates("cell_id")


def _crit(data, crit: str | None) -> str:
    if crit is not None:
        return crit
    s = data.table("summary")
    return str(s["criterion"].iloc[0]) if "criterion" in s and len(s) else "final_gap"


def tuned(data, crit: str | None = None, level: float = LEVEL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, chosen) of every (cell, optimizer) tuned on ``crit`` (default: the sweep's)."""
    runs = data.table("runs")
    name = _crit(data, crit)
    curves = data.table("curves") if name in NEEDS_CURVES else None
    summary, _, chosen = tune_select(runs, criterion(runs, name, curves), level)
    return summary, chosen


def _check(data, *methods) -> str | None:
    have = set(data.table("runs")["optimizer"])
    missing = [m for m in methods if m not in have]
    return f"no runs of {', '.join(missing)} (have: {', '.join(sorted(have))})" if missing else None


def _table(df: pd.DataFrame, cols: list[str]) -> str:
    vary = [c for c in df.columns if c.startswith("p_") and df[c].nunique() > 1]
    return df[[*vary, *cols]].to_string(index=False, float_format=lambda v: f"{v:.3g}")


@register("time_to_target", pairwise=True)
def time_to_target(
    data,
    focus: str,
    rival: str,
    target: float | None = None,
    relative: bool = True,
    unit: str = "steps",
    tune_by: str = "target",
    metric: str = "gap",
    where: dict | None = None,
    level: float = LEVEL,
) -> tuple[str, str, dict]:
    """The tuned ``focus`` reaches the target sooner than the tuned ``rival`` in each selected
    cell. Target: ``target`` x the run's value at step 0 (``relative``) or ``target`` itself, or,
    when ``target`` is None, the rival's tuned median final value in that cell (on the sweep's
    criterion). Time: steps or ``oracle_calls`` (steps x calls per step), interpolated between
    logged points (analysis.compare.crossing_step). Each method is tuned for that time
    (``tune_by = "target"``) or taken at its criterion-tuned lr (``"criterion"``). Good where the
    bootstrap CI of log10(time focus / time rival) over seeds is below 0, weak where it holds 0."""
    if unit not in ("steps", "oracle_calls"):
        raise ValueError(f"unit: got {unit!r}; allowed: steps, oracle_calls")
    if tune_by not in ("target", "criterion"):
        raise ValueError(f"tune_by: got {tune_by!r}; allowed: target, criterion")
    bad = _check(data, focus, rival)
    if bad:
        return "not testable", bad, {}
    runs, curves = data.table("runs"), data.table("curves")
    runs = runs[runs["optimizer"].isin([focus, rival])]
    keep = set(_where(_cells(data), where)["cell_id"]) if where else set(runs["cell_id"])
    runs = runs[runs["cell_id"].isin(keep)]
    if runs.empty:
        return "not testable", "no cell matches the selection", {}
    c = curves[curves["run_id"].isin(runs["run_id"])].sort_values(["run_id", "step"], kind="stable")
    first = c.groupby("run_id")[metric].first()
    summary, chosen = tuned(data, level=level)
    if target is None:
        final = c.groupby("run_id")[metric].last()
        ch = chosen[(chosen["optimizer"] == rival) & chosen["cell_id"].isin(keep)]
        per_cell = ch.assign(v=ch["run_id"].map(final)).groupby("cell_id")["v"].median()
        thr = runs.set_index("run_id")["cell_id"].map(per_cell)
        what = f"{rival}'s tuned median final {metric}"
    else:
        thr = first * target if relative else pd.Series(float(target), index=first.index)
        what = f"{metric} <= {target:g}" + (" x its value at step 0" if relative else "")
    times = compare.times_to_target(c, thr.dropna(), metric)
    if unit == "oracle_calls":
        steps = c.groupby("run_id")["step"].max()
        per_step = runs.set_index("run_id")["oracle_calls"] / steps
        times = times * per_step.reindex(times.index)
    runs = runs.assign(value=runs["run_id"].map(times).fillna(math.inf).where(runs["status"] == "ok", math.inf))
    if tune_by == "target":
        _, _, pick = tune_select(runs, runs["value"].rename(f"time_to_target_{unit}"), level)
        pick = pick.rename(columns={"score": "value"})
    else:
        pick = chosen[chosen["run_id"].isin(runs["run_id"])].merge(runs[["run_id", "value"]], on="run_id")
    pr = compare.pair_ratios(pick[["cell_id", "optimizer", "seed", "value"]], focus, rival, level)
    pr = _cells(data).merge(pr, on="cell_id")
    states = ["good" if o == focus else "weak" if o == compare.TIE else "bad" for o in pr["outcome"]]
    nums = {
        "target": what,
        "unit": unit,
        "tuned_by": tune_by,
        "cells": len(pr),
        "cells_focus_faster": int((pr["outcome"] == focus).sum()),
        "cells_tie": int((pr["outcome"] == compare.TIE).sum()),
        "cells_rival_faster": int((pr["outcome"] == rival).sum()),
        "median_log10_ratio": _r(np.nanmedian(pr["log10_ratio"].replace([np.inf, -np.inf], np.nan)))
        if len(pr)
        else None,
        "table": _table(pr, [f"median_{focus}", f"median_{rival}", "log10_ratio", "ci_low", "ci_high", "outcome"]),
    }
    text = (
        f"{unit} to reach {what}: log10(time {focus} / time {rival}) over seeds, bootstrap CI below 0 "
        f"in every selected cell (each tuned {'for that time' if tune_by == 'target' else 'on the criterion'})"
    )
    return _combine(states), text, nums


def curve_table(
    data,
    a: str,
    b: str,
    metric: str = "gap",
    min_points: int = 3,
    min_decades: float = 0.0,
    where: dict | None = None,
    level: float = LEVEL,
    crit: str | None = None,
) -> pd.DataFrame:
    """Per selected cell: the whole-curve outcome of the two methods tuned on ``crit`` (default
    the sweep's criterion; analysis.compare.compare_curves), with the cells' p_ columns."""
    _, chosen = tuned(data, crit, level)
    out = compare.compare_curves(data.table("curves"), chosen, a, b, metric, level, min_points, min_decades)
    return _where(_cells(data).merge(out, on="cell_id"), where)


@register("curves_cross", pairwise=True)
def curves_cross(
    data,
    a: str,
    b: str,
    min_points: int = 3,
    min_decades: float = 0.0,
    min_cells: int = 1,
    metric: str = "gap",
    where: dict | None = None,
    level: float = LEVEL,
    crit: str | None = None,
) -> tuple[str, str, dict]:
    """Trade-off cells: the two tuned median curves cross beyond noise (each method's bootstrap
    band strictly below the other's over a stretch of >= ``min_points`` consecutive logged steps
    spanning >= ``min_decades`` decades, each way). Reproduced when at least ``min_cells``
    selected cells are trade-offs; overlapping bands are ties, not trade-offs."""
    bad = _check(data, a, b)
    if bad:
        return "not testable", bad, {}
    tab = curve_table(data, a, b, metric, min_points, min_decades, where, level, crit)
    if tab.empty:
        return "not testable", "no cell matches the selection", {}
    counts = {k: int((tab["outcome"] == k).sum()) for k in (a, b, compare.TRADE_OFF, compare.TIE)}
    nums = {
        "cells": len(tab),
        **{f"cells_{k}": v for k, v in counts.items()},
        "trade_off_cells": [int(c) for c in tab.loc[tab["outcome"] == compare.TRADE_OFF, "cell_id"]],
        "table": _table(tab, ["outcome", "a_better_points", "b_better_points", "a_better_from", "b_better_from"]),
    }
    text = (
        f"tuned median {metric} curves of {a} and {b} cross beyond noise (bands separated >= {min_points} logged "
        f"steps and >= {min_decades:g} decades each way) in >= {min_cells} cell(s)"
    )
    return ("reproduced" if counts[compare.TRADE_OFF] >= min_cells else "not reproduced"), text, nums


def _map(xs, ys, grid, x, y, short) -> str:
    head = f"{y:>8} | " + " ".join(f"{v:>5.3g}" for v in xs) + f"   <- {x}"
    rows = [
        f"{ys[i]:>8.3g} | " + " ".join(f"{short.get(v, ' '):>5}" for v in grid[i]) for i in range(len(ys) - 1, -1, -1)
    ]
    return "\n".join([head, *rows])


@register("regions", pairwise=True)
def regions(
    data,
    a: str,
    b: str,
    x: str,
    y: str,
    phases: list | None = None,
    min_size: int = 3,
    min_points: int = 3,
    min_decades: float = 0.0,
    metric: str = "gap",
    where: dict | None = None,
    level: float = LEVEL,
    crit: str | None = None,
) -> tuple[str, str, dict]:
    """Predicted phases as regions of the (x, y) grid: each cell is labelled ``a`` / ``b`` (that
    method's tuned curve better beyond noise and never worse), ``trade-off`` (curves cross
    beyond noise) or ``tie`` (analysis.compare.curve_outcome); a phase is present when a
    4-connected region of its label has >= ``min_size`` cells. Reproduced when every phase of
    ``phases`` (default: a, b, trade-off) is present, not reproduced when none is."""
    phases = list(phases) if phases is not None else [a, b, compare.TRADE_OFF]
    allowed = {a, b, compare.TRADE_OFF, compare.TIE}
    for p in phases:
        if p not in allowed:
            raise ValueError(f"phases: got {p!r}; allowed: {', '.join(sorted(allowed))}")
    bad = _check(data, a, b)
    if bad:
        return "not testable", bad, {}
    tab = curve_table(data, a, b, metric, min_points, min_decades, where, level, crit)
    if tab.empty:
        return "not testable", "no cell matches the selection", {}
    xs, ys, grid = compare.label_grid(tab, f"p_{x}", f"p_{y}")
    regs = compare.regions(grid, xs, ys)
    largest = {p: max((r["size"] for r in regs if r["label"] == p), default=0) for p in phases}
    present = [p for p in phases if largest[p] >= min_size]
    absent = [p for p in phases if p not in present]
    short = {a: "A", b: "B", compare.TRADE_OFF: "X", compare.TIE: "."}
    nums = {
        "cells": len(tab),
        "min_size": min_size,
        "largest_region": largest,
        "absent": absent,
        "cells_per_label": {k: int((tab["outcome"] == k).sum()) for k in short},
        "regions": [
            {"label": r["label"], "size": r["size"], "cells": [[_r(u), _r(v)] for u, v in r["cells"]]} for r in regs
        ],
        "map": _map(xs, ys, grid, x, y, short),
        "legend": ", ".join(f"{s} = {k}" for k, s in short.items()),
    }
    status = "reproduced" if not absent else "not reproduced" if not present else "partly"
    text = (
        f"over the ({x}, {y}) grid, each of {', '.join(phases)} forms a 4-connected region of >= {min_size} cells "
        f"(cell labels from the tuned {metric} curves)"
    )
    return status, text, nums


@register("ratio_constant", pairwise=True)
def ratio_constant(
    data,
    focus: str,
    rival: str,
    tol: float,
    along: str,
    where: dict | None = None,
    crit: str | None = None,
    level: float = LEVEL,
) -> tuple[str, str, dict]:
    """ "Match up to a constant factor": the tuned log10(focus / rival) (criterion medians over
    seeds) at every selected cell with its bootstrap CI. Holds when (1) one constant c puts every
    cell's CI inside log10 c +- ``tol`` (max CI high - min CI low <= 2 tol) and (2) the ratio
    does not drift along ``along`` beyond noise (the bootstrap-over-seeds CI of the regression
    slope of the log-ratio on ``along`` contains 0). Reproduced when both hold, partly when one
    does. Reports c = 10^(mean cell log-ratio) and the interval of admissible log10 c."""
    bad = _check(data, focus, rival)
    if bad:
        return "not testable", bad, {}
    _, chosen = tuned(data, crit, level)
    keep = set(_where(_cells(data), where)["cell_id"])
    ch = chosen[chosen["cell_id"].isin(keep) & chosen["optimizer"].isin([focus, rival])]
    pr = compare.pair_ratios(ch.rename(columns={"score": "value"}), focus, rival, level)
    if pr.empty:
        return "not testable", "no cell matches the selection", {}
    pr = _cells(data).merge(pr, on="cell_id").sort_values(f"p_{along}")
    finite = np.isfinite(pr[["log10_ratio", "ci_low", "ci_high"]].to_numpy(float)).all()
    lo_c, hi_c = compare.constant_band(pr["ci_low"], pr["ci_high"], tol) if finite else (math.inf, -math.inf)
    const_ok = lo_c <= hi_c
    log_c = float(np.mean(pr["log10_ratio"])) if finite else math.nan
    wide = ch.pivot_table(index=["cell_id", "optimizer"], columns="seed", values="score", aggfunc="first")
    cells = list(pr["cell_id"])
    a = wide.xs(focus, level="optimizer").reindex(cells).to_numpy(float)
    b = wide.xs(rival, level="optimizer").reindex(cells).to_numpy(float)
    xv = pr[f"p_{along}"].to_numpy(float)
    if len(np.unique(xv)) >= 2 and np.isfinite(a).all() and np.isfinite(b).all():
        slope, s_lo, s_hi = compare.ratio_trend(xv, a, b, level)
        trend_ok = s_lo <= 0 <= s_hi
    else:
        slope = s_lo = s_hi = math.nan
        trend_ok = False
    span = float(xv.max() - xv.min()) if len(xv) else math.nan
    nums = {
        "cells": len(pr),
        "c": _r(10**log_c),
        "log10_c": _r(log_c),
        "log10_c_admissible": [_r(lo_c), _r(hi_c)] if const_ok else None,
        "ci_spread": _r(pr["ci_high"].max() - pr["ci_low"].min()),
        "tol": tol,
        f"slope_per_{along}": _r(slope),
        "slope_ci": [_r(s_lo), _r(s_hi)],
        f"drift_over_{along}_range": _r(slope * span),
        "constant_ok": bool(const_ok),
        "no_drift": bool(trend_ok),
        "table": _table(pr, [f"median_{focus}", f"median_{rival}", "log10_ratio", "ci_low", "ci_high"]),
    }
    status = {2: "reproduced", 1: "partly", 0: "not reproduced"}[int(const_ok) + int(trend_ok)]
    text = (
        f"one constant c with every cell's CI of log10({focus}/{rival}) within log10 c +- {tol:g}, and the "
        f"regression slope on {along} has a bootstrap CI containing 0"
    )
    return status, text, nums
