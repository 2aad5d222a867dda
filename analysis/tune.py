"""Fair per-cell tuning (protocol: docs/protocol.md).

Every optimizer's hyperparameter grid is scored per run by one named criterion (lower is
better); the median over seeds picks the best point per (cell, optimizer); the seeds of that point
give a bootstrap CI. A best learning rate at the edge of its grid is flagged (``lr_at_edge``), not
hidden, and :func:`refine_edges` proposes the widened grid for such cells (the lab runs it).
The learning-rate sensitivity table (every grid point, not only the best) is kept as a result.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd

from .options import CRITERIA, NEEDS_CURVES
from .stats import LEVEL, TINY, median_ci

__all__ = [
    "CRITERIA",
    "NEEDS_CURVES",
    "auc_log_gap",
    "criterion",
    "refine_edges",
    "select",
    "sensitivity",
    "steps_to_target",
    "to_toml",
    "tune",
    "tuned_columns",
]


# --- per-run scores ---------------------------------------------------------------------------
def steps_to_target(curves: pd.DataFrame, target: float, relative: bool = True, metric: str = "gap") -> pd.Series:
    """First logged step at which ``metric`` <= ``target`` (x its value at step 0 when
    ``relative``), per ``run_id``; +inf where the curve never gets there."""
    c = curves.sort_values(["run_id", "step"], kind="stable")
    thr = c.groupby("run_id")[metric].transform("first") * target if relative else target
    hit = c[c[metric] <= thr]
    first = hit.groupby("run_id")["step"].min().astype(float)
    return first.reindex(c["run_id"].unique(), fill_value=np.inf).rename("steps_to_target")


def auc_log_gap(curves: pd.DataFrame, metric: str = "gap") -> pd.Series:
    """10 ** ((1/T) * integral_0^T log10 gap(t) dt), trapezoid rule on the logged steps, per
    ``run_id``: a geometric-mean gap over the run (positive, same units as the gap, so ratios of
    it are meaningful). Runs with a non-finite gap, or fewer than two logged steps, give +inf."""
    c = curves.sort_values(["run_id", "step"], kind="stable")
    t = c["step"].to_numpy(float)
    v = c[metric].to_numpy(float)
    lv = np.log10(np.maximum(np.where(np.isfinite(v), v, np.nan), TINY))
    rid = c["run_id"].to_numpy()
    same = np.r_[False, rid[1:] == rid[:-1]]  # row i continues the run of row i-1
    seg = np.where(same, 0.5 * (lv + np.r_[np.nan, lv[:-1]]) * (t - np.r_[np.nan, t[:-1]]), 0.0)
    g = pd.DataFrame({"run_id": rid, "seg": seg, "t": t, "bad": ~np.isfinite(v)}).groupby("run_id", sort=False)
    area, span = g["seg"].sum(min_count=1), g["t"].max() - g["t"].min()
    out = 10.0 ** (area / span.where(span > 0))
    out[g["bad"].any() | ~np.isfinite(out)] = np.inf
    return out.rename("auc_log_gap").astype(float)


def criterion(
    runs: pd.DataFrame, name: str, curves: pd.DataFrame | None = None, target: float | None = None
) -> pd.Series:
    """Per-run score aligned with ``runs`` (lower is better); diverged runs and NaN score +inf.
    ``steps_to_target`` uses the runs.csv column (the sweep's target) unless ``target`` and
    ``curves`` are given; ``auc_log_gap`` needs ``curves``."""
    if name not in CRITERIA:
        raise ValueError(f"criterion: unknown {name!r}; allowed: {', '.join(CRITERIA)}")
    if name == "auc_log_gap" or (name == "steps_to_target" and (target is not None or "steps_to_target" not in runs)):
        if curves is None:
            raise ValueError(f"criterion {name!r} needs curves.csv")
        per = (
            auc_log_gap(curves)
            if name == "auc_log_gap"
            else steps_to_target(curves, target if target is not None else 1e-2)
        )
        v = runs["run_id"].map(per).astype(float)
    else:
        v = runs[name].astype(float)
    v = v.where(runs["status"] == "ok", np.inf)
    return v.fillna(np.inf).rename(name)


# --- the grid ---------------------------------------------------------------------------------
def hparam_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if c.startswith("h_")]


def tuned_columns(runs: pd.DataFrame) -> list[str]:
    """Hyperparameters that take more than one value for some optimizer (the tuning grid)."""
    return [c for c in hparam_columns(runs) if (runs.groupby("optimizer")[c].nunique(dropna=True) > 1).any()]


def _point_ids(runs: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Integer id of each run's hyperparameter point within its (keys, optimizer)."""
    cols = list(dict.fromkeys([*keys, "optimizer", *hparam_columns(runs)]))
    return runs.groupby(cols, dropna=False, sort=True).ngroup().rename("point")


def sensitivity(
    runs: pd.DataFrame,
    scores: "pd.Series | str",
    level: float = LEVEL,
    by: tuple[str, ...] = (),
    curves: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (cell, optimizer, hyperparameter point): median criterion over seeds with its
    bootstrap CI, the number of seeds and of diverged seeds. The learning-rate sensitivity
    curves: kept as part of the answer (DeepOBS), not a by-product."""
    if isinstance(scores, str):
        scores = criterion(runs, scores, curves)
    keys = ["cell_id", *by]
    df = runs.assign(score=scores.to_numpy(float), point=_point_ids(runs, keys).to_numpy())
    df = df.sort_values("seed", kind="stable")
    g = df.groupby("point", sort=True)
    first = g.first()
    # each point's scores in seed order: the rows by point (stable, so seeds stay in order), split
    by_point = df.sort_values("point", kind="stable")
    sizes = g.size().to_numpy()
    samples = np.split(by_point["score"].to_numpy(float), np.cumsum(sizes)[:-1])
    med, lo, hi = median_ci(samples, level)
    kind = ["optimizer_kind"] if "optimizer_kind" in first else []
    out = first[list(dict.fromkeys([*keys, "optimizer", *kind, *hparam_columns(runs)]))].copy()
    out["median"], out["ci_low"], out["ci_high"] = med, lo, hi
    out["n_seeds"] = sizes
    out["n_diverged"] = (df["status"] != "ok").groupby(df["point"], sort=True).sum().astype(int).to_numpy()
    return out.reset_index()


def select(
    runs: pd.DataFrame, scores: pd.Series, level: float = LEVEL, by: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Tuning: (summary, sensitivity, chosen). ``summary`` has one row per (cell, *by,
    optimizer) at its best point by median (ties broken by the CI's upper end, then the
    smaller lr); ``chosen`` holds the seeds' runs of those points with their ``score``."""
    keys = ["cell_id", *by]
    sens = sensitivity(runs, scores, level, by)
    sort = ["median", "ci_high", "h_lr"] if "h_lr" in sens else ["median", "ci_high"]
    best = sens.sort_values([*keys, "optimizer", *sort], kind="stable").groupby([*keys, "optimizer"], sort=True).head(1)
    grid = sens.groupby([*keys, "optimizer"]).agg(n_grid=("point", "size"))
    if "h_lr" in sens:
        lr = runs.groupby([*keys, "optimizer"])["h_lr"].agg(lr_min="min", lr_max="max", lr_n="nunique")
        grid = grid.join(lr)
    alld = runs.assign(_d=(runs["status"] != "ok").astype(float)).groupby([*keys, "optimizer"])["_d"].mean()
    grid["diverged_frac_grid"] = alld
    best = best.join(grid, on=[*keys, "optimizer"])
    if "h_lr" in sens:
        multi = best["lr_n"] > 1
        low = multi & np.isclose(best["h_lr"], best["lr_min"], rtol=1e-9)
        high = multi & np.isclose(best["h_lr"], best["lr_max"], rtol=1e-9)
        best["lr_at_edge"] = low | high
        best["lr_edge"] = np.where(low, "low", np.where(high, "high", ""))
        best = best.drop(columns=["lr_n"])
        best["lr_resolution"] = lr_resolution(runs, best, by).to_numpy()
    else:
        best["lr_at_edge"], best["lr_edge"] = False, ""
    best.insert(len(keys) + 2, "criterion", scores.name)
    df = runs.assign(score=scores.to_numpy(float), point=_point_ids(runs, keys).to_numpy())
    chosen = df[df["point"].isin(best["point"])][["run_id", *keys, "optimizer", "seed", "status", "score"]]
    summary = best.drop(columns=["point"]).reset_index(drop=True)
    return (
        summary,
        sens.drop(columns=["point"]),
        chosen.sort_values([*keys, "optimizer", "seed"]).reset_index(drop=True),
    )


def lr_neighbours(lrs, chosen: float) -> tuple[float, float]:
    """(lower, upper) neighbour of ``chosen`` among the distinct learning rates ``lrs`` (NaN where
    ``chosen`` is at that edge)."""
    v = np.unique(np.asarray(lrs, float))
    i = int(np.argmin(np.abs(np.log10(v) - np.log10(chosen)))) if len(v) and chosen > 0 else -1
    lo = v[i - 1] if i > 0 else np.nan
    hi = v[i + 1] if 0 <= i < len(v) - 1 else np.nan
    return float(lo), float(hi)


def lr_spacing(lrs, chosen: float) -> float:
    """Local resolution of a tuned lr, in decades: the larger log10 gap from ``chosen`` to its
    neighbours among ``lrs`` (the one gap at an edge; NaN with a single lr). The lab's
    refinement (lab/refine.py) stops when this is <= its ``resolution``."""
    lo, hi = lr_neighbours(lrs, chosen)
    gaps = [abs(math.log10(chosen / w)) for w in (lo, hi) if np.isfinite(w)]
    return max(gaps) if gaps else math.nan


def lr_resolution(runs: pd.DataFrame, best: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.Series:
    """:func:`lr_spacing` of each tuned row of ``best`` (one per (cell, *by, optimizer)) among the
    lrs tried at the same cell and the same other hyperparameters (summary.csv ``lr_resolution``)."""
    others = [c for c in hparam_columns(runs) if c != "h_lr" and c not in by]
    keys = ["cell_id", *by, "optimizer", *others]
    lrs = runs[[*keys, "h_lr"]].astype({c: object for c in others}).fillna({c: "<na>" for c in others})
    tried = lrs.groupby(keys, sort=False, dropna=False)["h_lr"].agg(lambda s: tuple(s.unique()))
    want = best[[*keys, "h_lr"]].astype({c: object for c in others}).fillna({c: "<na>" for c in others})
    out = [lr_spacing(tried.get(tuple(r[k] for k in keys), ()), r["h_lr"]) for _, r in want.iterrows()]
    return pd.Series(out, index=best.index, name="lr_resolution", dtype=float)


def tune(
    runs: pd.DataFrame,
    crit: str = "final_gap",
    level: float = LEVEL,
    curves: pd.DataFrame | None = None,
    by: tuple[str, ...] = (),
) -> pd.DataFrame:
    """One row per (cell, optimizer): the best hyperparameter point by median criterion over
    seeds, its median and bootstrap CI, ``n_grid`` (the budget), ``lr_at_edge`` / ``lr_edge``."""
    return select(runs, criterion(runs, crit, curves), level, by)[0]


# --- widening the grid where the best lr sat at an edge ---------------------------------------
def refine_edges(
    summary: pd.DataFrame, config: dict, lr_values: dict[str, list], extra: int = 2
) -> tuple[pd.DataFrame, dict]:
    """Where some cell's best lr sat at the low (high) end of an optimizer's grid, extend that
    optimizer's grid by ``extra`` points beyond that end at the grid's own log spacing.
    ``lr_values`` = {optimizer label: the lr values it ran} (runs.csv, via
    :meth:`analysis.results.Results.grid_values`).

    Returns (proposals, config): one row per widened (optimizer, edge) with the cells concerned,
    and a copy of ``config`` whose lr grids are widened (explicit lists; ``name`` gets a
    ``_refined`` suffix). Running it needs new jobs, so the lab runs it: ``muonlab report DIR
    --refine-edges`` writes it to ``DIR/refine_edges.toml`` for ``muonlab run``. Methods without
    edge hits keep their grid: their optimum is interior, and docs/protocol.md records the
    resulting grid sizes (the report shows ``n_grid`` per method)."""
    cfg = copy.deepcopy(config)
    rows = []
    edge = summary[summary["lr_at_edge"].astype(bool)] if "lr_at_edge" in summary else summary.iloc[:0]
    for opt in cfg.get("optimizers", []):
        label = opt.get("label") or opt["name"]
        sub = edge[edge["optimizer"] == label]
        if sub.empty:
            continue
        vals = sorted(float(v) for v in lr_values.get(label, []) if v > 0)
        if len(vals) < 2:
            continue
        step = float(np.mean(np.diff(np.log10(vals))))
        new = list(vals)
        for side in ("low", "high"):
            hit = sub[sub["lr_edge"] == side]
            if hit.empty:
                continue
            base = math.log10(vals[0] if side == "low" else vals[-1])
            add = [10 ** (base + (-k if side == "low" else k) * step) for k in range(1, extra + 1)]
            new = sorted(new + add)
            rows.append(
                {
                    "optimizer": label,
                    "edge": side,
                    "n_cells": len(hit),
                    "cells": " ".join(map(str, sorted(hit["cell_id"]))),
                    "old_min": vals[0],
                    "old_max": vals[-1],
                    "added": " ".join(f"{v:.4g}" for v in add),
                }
            )
        opt["lr"] = [float(f"{v:.12g}") for v in new]
    if rows:
        cfg["name"] = f"{cfg.get('name', 'sweep')}_refined"
    return pd.DataFrame(rows, columns=["optimizer", "edge", "n_cells", "cells", "old_min", "old_max", "added"]), cfg


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return "inf" if v == math.inf else "-inf" if v == -math.inf else "nan" if v != v else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items() if x is not None) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(config: dict) -> str:
    """A TOML text of a config dict (as in manifest.json) that ``lab.config.load_config`` reads
    back. None values are left out; grid specs ({linspace/logspace}) become inline tables."""

    def inline(v) -> bool:
        return not isinstance(v, dict) or set(v) <= {"linspace", "logspace"}

    def table(d: dict, path: str, lines: list[str]) -> None:
        for k, v in d.items():
            if v is None or (isinstance(v, list) and v and all(isinstance(x, dict) for x in v)):
                continue
            if inline(v):
                lines.append(f"{k} = {_toml_value(v)}")
        for k, v in d.items():
            sub = f"{path}.{k}" if path else k
            if isinstance(v, dict) and not inline(v):
                lines.append(f"\n[{sub}]")
                table(v, sub, lines)
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                for item in v:
                    lines.append(f"\n[[{sub}]]")
                    table({a: b for a, b in item.items() if not (isinstance(b, dict) and not b)}, sub, lines)

    lines: list[str] = []
    table(config, "", lines)
    return "\n".join(lines) + "\n"
