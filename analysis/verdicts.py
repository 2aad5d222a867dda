"""Verdict rules for reproduced claims: each turns a finished sweep into a status
(reproduced / partly / not reproduced / not testable), the numbers behind it, and the rule in words.
The rule and its thresholds are stated in the claim's preset (configs/claims/*.toml), never here."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .stats import log10_ratio, verdict

STATUSES = ("reproduced", "partly", "not reproduced", "not testable")
RULES: dict[str, Callable] = {}


@dataclass
class Verdict:
    claim: str
    status: str
    rule: str
    numbers: dict = field(default_factory=dict)


@dataclass
class SweepData:
    """Lazy access to a sweep directory's tables."""

    dir: Path
    _cache: dict = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame:
        if name not in self._cache:
            self._cache[name] = pd.read_csv(self.dir / f"{name}.csv")
        return self._cache[name]


def register(name: str):
    def deco(fn):
        RULES[name] = fn
        return fn

    return deco


def select(df: pd.DataFrame, where: dict | None) -> pd.DataFrame:
    """Rows whose p_<name> columns equal the given values (floats compared with a tolerance)."""
    mask = np.ones(len(df), bool)
    for k, v in (where or {}).items():
        col = df[f"p_{k}"]
        mask &= np.isclose(col.astype(float), float(v)) if isinstance(v, (int, float)) else (col == v)
    return df[mask]


def pairwise(summary: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Per cell: a's and b's tuned medians, the log10 ratio and the outcome (a, b, or tie when
    the CIs overlap) by the lab's one tie rule (analysis.stats.verdict)."""
    pa = summary[summary.optimizer == a].set_index("cell_id")
    pb = summary[summary.optimizer == b].set_index("cell_id").reindex(pa.index)
    out = pa[[c for c in pa.columns if c.startswith("p_")]].copy()
    out["median_a"], out["median_b"] = pa["median"], pb["median"]
    out["outcome"] = [verdict(a, b, *v) for v in zip(pa["ci_low"], pa["ci_high"], pb["ci_low"], pb["ci_high"], pa["median"], pb["median"])]
    out["log10_ratio"] = log10_ratio(pa["median"], pb["median"])
    return out.reset_index()


@register("ratio_bound")
def ratio_bound(data: SweepData, focus: str, rival: str, bound: float, where: dict | None = None) -> tuple[str, str, dict]:
    """|log10(tuned median focus / rival)| <= bound on every selected cell: the two match up to a
    constant factor 10^bound."""
    pw = select(pairwise(data.table("summary"), focus, rival), where)
    if pw.empty:
        return "not testable", "no cell matches the selection", {}
    worst = float(np.nanmax(np.abs(pw["log10_ratio"])))
    nums = {"cells": len(pw), "max_abs_log10_ratio": round(worst, 3), "factor": round(10**worst, 2),
            "median_log10_ratio": round(float(np.nanmedian(pw["log10_ratio"])), 3)}
    text = f"max over {len(pw)} cells of |log10({focus}/{rival})| <= {bound} (a factor {10**bound:.3g})"
    return ("reproduced" if worst <= bound else "not reproduced"), text, nums


@register("winner_regions")
def winner_regions(data: SweepData, a: str, b: str, x: str, y: str, where: dict | None = None) -> tuple[str, str, dict]:
    """Three regions over (x, y): cells a wins, cells b wins (CIs separated), and ties
    (trade-off). Reproduced when all three are present, partly when two are."""
    pw = select(pairwise(data.table("summary"), a, b), where)
    if pw.empty:
        return "not testable", "no cell matches the selection", {}
    counts = {k: int((pw["outcome"] == k).sum()) for k in (a, b, "tie")}
    present = sum(v > 0 for v in counts.values())
    grid = pw.pivot(index=f"p_{y}", columns=f"p_{x}", values="outcome").sort_index(ascending=False)
    short = {a: "A", b: "B", "tie": "."}
    head = f"{y:>8} | " + " ".join(f"{c:>5.3g}" for c in grid.columns) + f"   <- {x}"
    rows = [f"{idx:>8.3g} | " + " ".join(f"{short[v]:>5}" for v in r) for idx, r in grid.iterrows()]
    nums = {"cells": len(pw), **{f"cells_{k}": v for k, v in counts.items()},
            "map": "\n".join([head, *rows]),
            "legend": ", ".join(f"{s} = {k}" for k, s in short.items())}
    status = {3: "reproduced", 2: "partly"}.get(present, "not reproduced")
    text = f"over the ({x}, {y}) grid: cells where {a} wins, where {b} wins (bootstrap CIs separate), and ties all occur"
    return status, text, nums


def evaluate(out_dir, rules: list[dict]) -> list[Verdict]:
    data = SweepData(Path(out_dir))
    out = []
    for r in rules:
        status, text, nums = RULES[r["kind"]](data, **r.get("params", {}))
        out.append(Verdict(claim=r["claim"], status=status, rule=text, numbers=nums))
    return out


def overall(verdicts: list[Verdict]) -> str:
    """All sub-claims reproduced -> reproduced; none testable -> not testable; none reproduced
    (and none partly) -> not reproduced; else partly."""
    st = [v.status for v in verdicts if v.status != "not testable"]
    if not st:
        return "not testable"
    if all(s == "reproduced" for s in st):
        return "reproduced"
    if all(s == "not reproduced" for s in st):
        return "not reproduced"
    return "partly"


def tuned_runs(data: SweepData) -> pd.DataFrame:
    """runs.csv rows of each (cell, optimizer)'s tuned point by the sweep's own criterion (every
    seed), as :func:`tuned` selects them."""
    _, _, chosen = tuned(data, "criterion")
    runs = data.table("runs")
    return runs[runs["run_id"].isin(chosen["run_id"])]


@register("mode_exponent")
def mode_exponent(data: SweepData, optimizer: str, expected: float, tol: float, where: dict | None = None,
                  modes: tuple[int, int] | None = None, min_steps: float = 2.0) -> tuple[str, str, dict]:
    """Phases of Muon's per-mode claim: fit rate_j ~ lambda_j^q across the logged eigen-modes
    (rate_j = 1 / e-folding step of mode_err_j, analysis.theory.mode_decay_rates; lambda_j =
    j^-alpha) for every seed of the tuned runs of ``optimizer`` in the selected cells (``modes`` =
    [j_lo, j_hi] restricts the fit to those modes); reproduced when the median exponent is within
    ``tol`` of ``expected``. Components that e-fold in fewer than ``min_steps`` steps are dropped:
    a rate faster than the step cannot be resolved (log-interpolation inside the first step)."""
    from .stats import loglog_fit
    from .theory import mode_columns, mode_decay_rates, mode_eigenvalues

    curves = data.table("curves")
    cols = mode_columns(curves)
    if not cols:
        return "not testable", "the sweep logged no mode_err_<j> curves (set log_modes)", {}
    if modes is not None:
        cols = [(j, c) for j, c in cols if modes[0] <= j <= modes[1]]
    runs = select(tuned_runs(data), where)
    runs = runs[(runs["optimizer"] == optimizer) & (runs["status"] == "ok")]
    if runs.empty:
        return "not testable", f"no finished tuned run of {optimizer} matches the selection", {}
    slopes = []
    for _, r in runs.iterrows():
        g = curves[curves["run_id"] == r["run_id"]].sort_values("step")
        rate = mode_decay_rates(g, [c for _, c in cols])
        rate = np.where(rate <= 1.0 / min_steps, rate, np.nan)
        q, _, n = loglog_fit(mode_eigenvalues([j for j, _ in cols], float(r["p_alpha"])), rate)
        if n >= 3 and np.isfinite(q):
            slopes.append(q)
    span = f"modes {cols[0][0]}..{cols[-1][0]}" if cols else "no modes"
    text = (f"median over seeds of the fitted exponent q (rate_j ~ (j^-alpha)^q, {span}, components slower than "
            f"{min_steps:g} steps) of {optimizer} within {tol} of {expected}")
    if not slopes:
        return "not testable", text + ": no run had >= 3 modes that decayed by a factor e", {}
    med = float(np.median(slopes))
    nums = {"runs_fitted": len(slopes), "median_exponent": round(med, 3), "min": round(min(slopes), 3),
            "max": round(max(slopes), 3), "expected": expected}
    return ("reproduced" if abs(med - expected) <= tol else "not reproduced"), text, nums


# =====================================================================================================
# Rules for claims 2-5 (issue 8): Shen et al.'s advantage, MVR rate exponents, Li & Hong's
# hyperparameter effects, convex-Lipschitz non-convergence. Thresholds are the presets' params.
# =====================================================================================================
import json as _json  # noqa: E402

from scipy import stats as _sps  # noqa: E402

from .stats import LEVEL as _LEVEL  # noqa: E402
from .stats import log10_ratio_ci as _log10_ratio_ci  # noqa: E402
from .stats import loglog_fit as _loglog_fit  # noqa: E402
from .stats import median_ci as _median_ci  # noqa: E402


def _r(x, nd: int = 3):
    """Round a number for a verdict page (None for NaN / inf, so the JSON stays valid)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return x
    if not np.isfinite(x):
        return None if np.isnan(x) else ("inf" if x > 0 else "-inf")
    return float(f"{x:.{nd}g}") if abs(x) < 1e-3 or abs(x) >= 1e4 else round(x, nd)


def _manifest(data: SweepData) -> dict:
    if "_manifest" not in data._cache:
        p = data.dir / "manifest.json"
        data._cache["_manifest"] = _json.loads(p.read_text()) if p.exists() else {}
    return data._cache["_manifest"]


def _curves_stat(data: SweepData, col: str, how: str) -> pd.Series:
    """Per run_id: the min (``how = "best"``) or mean over logged steps >= 1 (``"mean"``) of a
    curves.csv column."""
    c = data.table("curves")
    if col not in c:
        raise ValueError(f"curves.csv has no column {col!r}")
    c = c[c["step"] >= 1]
    g = c.groupby("run_id")[col]
    return g.min() if how == "best" else g.mean()


def run_metric(data: SweepData, metric: str) -> pd.Series:
    """Per-run score (lower is better) aligned with runs.csv, named ``metric``:
    ``criterion`` (the sweep's tuning criterion), ``final_<x>`` (a runs.csv column),
    ``best_<x>`` / ``mean_<x>`` (min / mean over the logged steps of a curves.csv column).
    Diverged runs score +inf."""
    from .tune import criterion

    runs = data.table("runs")
    if metric == "criterion":
        crit = (_manifest(data).get("config", {}).get("analysis") or {}).get("criterion", "final_gap")
        curves = data.table("curves") if crit == "auc_log_gap" else None
        return criterion(runs, crit, curves).rename(metric)
    if metric.startswith(("best_", "mean_")):
        how, col = metric.split("_", 1)
        v = runs["run_id"].map(_curves_stat(data, col, how)).astype(float)
    elif metric in runs:
        v = runs[metric].astype(float)
    else:
        raise ValueError(f"metric {metric!r}: not a runs.csv column, nor best_/mean_ of a curves.csv column")
    v = v.where(runs["status"] == "ok", np.inf)
    return v.fillna(np.inf).rename(metric)


def tuned(data: SweepData, metric: str = "criterion") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(summary, sensitivity, chosen) of the lab's tuning protocol (analysis.tune.select: median
    over seeds per hyperparameter point, best point per cell and optimizer) applied to ``metric``.
    ``summary`` and ``sensitivity`` carry the cells' p_ columns; ``chosen`` is the per-seed rows
    (run_id, cell_id, optimizer, seed, status, score) of the tuned points."""
    from .tune import select

    key = f"_tuned_{metric}"
    if key not in data._cache:
        runs = data.table("runs")
        level = float((_manifest(data).get("config", {}).get("analysis") or {}).get("level") or _LEVEL)
        summary, sens, chosen = select(runs, run_metric(data, metric), level)
        pcols = [c for c in runs.columns if c.startswith("p_")]
        cells = runs[["cell_id", *pcols]].drop_duplicates("cell_id")
        data._cache[key] = (cells.merge(summary, on="cell_id"), cells.merge(sens, on="cell_id"), chosen)
    return data._cache[key]


def _advantage_table(data: SweepData, focus: str, rival: str, metric: str) -> pd.DataFrame:
    """Per cell: the tuned medians of focus and rival on ``metric`` and
    advantage = log10(rival / focus) (positive = focus better), with the paired-seed CI."""
    summary, _, chosen = tuned(data, metric)
    pa = summary[summary.optimizer == focus].set_index("cell_id")
    pb = summary[summary.optimizer == rival].set_index("cell_id").reindex(pa.index)
    out = pa[[c for c in pa.columns if c.startswith("p_")]].copy()
    out["focus"], out["rival"] = pa["median"], pb["median"]
    out["advantage"] = -log10_ratio(pa["median"], pb["median"])
    out["outcome"] = [verdict(focus, rival, *v) for v in zip(pa["ci_low"], pa["ci_high"], pb["ci_low"], pb["ci_high"], pa["median"], pb["median"])]
    return out.reset_index()


def _spearman(x, y) -> tuple[float, float, int]:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.unique(x[ok]).size < 2 or np.unique(y[ok]).size < 2:
        return np.nan, np.nan, int(ok.sum())
    rho, p = _sps.spearmanr(x[ok], y[ok])
    return float(rho), float(p), int(ok.sum())


def _combine(states: list[str]) -> str:
    """'good' / 'weak' / 'bad' per checked item -> reproduced (all good), not reproduced (none
    good and none weak), partly otherwise; not testable when nothing was checked."""
    if not states:
        return "not testable"
    if all(s == "good" for s in states):
        return "reproduced"
    if not any(s in ("good", "weak") for s in states):
        return "not reproduced"
    return "partly"


@register("advantage_tracks")
def advantage_tracks(data: SweepData, focus: str, rival: str, against: str, sign: int = 1,
                     metric: str = "best_grad_nuc", within: "str | list | None" = None, alpha: float = 0.05,
                     where: dict | None = None, figure: str | None = None) -> tuple[str, str, dict]:
    """Spearman correlation between ``against`` (a problem parameter, or ``theory_advantage`` =
    r L / L_star of Shen et al. from phase.csv, taken in log) and the measured advantage
    log10(rival / focus) of the tuned ``metric`` (positive = focus better), per group of
    ``within`` (or over all selected cells). A group agrees when rho has the sign ``sign`` with
    p < ``alpha`` (two-sided), is weak when it has that sign without significance, and
    contradicts otherwise. Reproduced when every group agrees; not reproduced when none agrees or
    is weak."""
    adv = select(_advantage_table(data, focus, rival, metric), where)
    if adv.empty:
        return "not testable", "no cell matches the selection", {}
    if against == "theory_advantage":
        ph = data.table("phase")
        if "theory_advantage" not in ph:
            return "not testable", "phase.csv has no theory_advantage (the problem reports no L / L_star)", {}
        adv = adv.merge(ph[["cell_id", "theory_advantage"]], on="cell_id", how="left")
        adv["x"] = np.log10(adv["theory_advantage"].astype(float))
        xname = "log10(r L / L_star)"
    else:
        adv["x"] = adv[f"p_{against}"].astype(float)
        xname = against
    within = [within] if isinstance(within, str) else list(within or [])
    groups = [(None, adv)] if not within else list(adv.groupby([f"p_{w}" for w in within], sort=True))
    states, nums, lines = [], {"metric": metric, "cells": len(adv)}, []
    for key, g in groups:
        rho, p, n = _spearman(g["x"], g["advantage"])
        if not np.isfinite(rho):
            continue
        ok_sign = np.sign(rho) == np.sign(sign)
        states.append("good" if ok_sign and p < alpha else "weak" if ok_sign else "bad")
        slope = _loglog_fit(10 ** g["x"], 10 ** g["advantage"])[0] if against == "theory_advantage" else np.nan
        key = key if isinstance(key, tuple) or key is None else (key,)
        label = "all cells" if key is None else ", ".join(f"{w} = {k:g}" if isinstance(k, (int, float, np.number)) else f"{w} = {k}" for w, k in zip(within, key))
        lines.append(f"{label}: rho = {rho:+.2f} (p = {p:.2g}, n = {n})" + (f", slope d adv / d log A = {slope:+.2f}" if np.isfinite(slope) else ""))
    pivot_cols = [c for c in adv.columns if c.startswith("p_") and adv[c].nunique() > 1]
    tab = adv[[*pivot_cols, "x", "focus", "rival", "advantage", "outcome"]].copy()
    tab = tab.rename(columns={"x": xname, "focus": f"{focus}", "rival": f"{rival}", "advantage": f"log10({rival}/{focus})"})
    if figure:
        x = adv["x"].astype(float)
        logx = against != "theory_advantage" and bool((x > 0).all()) and x.max() >= 10 * x.min()
        advantage_figure(adv, "x", xname, focus, rival, metric, data.dir / figure, hue=within, logx=logx)
    nums["spearman"] = "; ".join(lines) if lines else "no group with 3+ finite cells"
    nums["cells_focus_better"] = int((adv["outcome"] == focus).sum())
    nums["cells_rival_better"] = int((adv["outcome"] == rival).sum())
    nums["cells_tie"] = int((adv["outcome"] == "tie").sum())
    nums["table"] = tab.to_string(index=False, float_format=lambda v: f"{v:.3g}")
    direction = "rises" if sign > 0 else "falls"
    text = (f"the measured advantage log10({rival}/{focus}) of the tuned {metric} {direction} with {xname}"
            f"{'' if not within else ' within each ' + ' x '.join(within)}: Spearman rho of sign {'+' if sign > 0 else '-'} with p < {alpha}")
    return _combine(states), text, nums


@register("rate_near")
def rate_near(data: SweepData, methods: dict, tol: float, where: dict | None = None, table: str = "rates") -> tuple[str, str, dict]:
    """Fitted exponents (rates.csv: median over seeds of the per-seed log-log slope, with its
    bootstrap CI) near a reference: ``methods`` = {label: reference exponent}. Per (cell, method):
    good when |median - ref| <= ``tol``, weak when only the CI meets [ref - tol, ref + tol], bad
    otherwise."""
    try:
        r = select(data.table(table), where)
    except FileNotFoundError:
        return "not testable", f"the sweep wrote no {table}.csv", {}
    states, nums = [], {}
    for m, ref in methods.items():
        rows = r[r["optimizer"] == m]
        if rows.empty:
            nums[m] = "no fit"
            continue
        parts = []
        for _, row in rows.iterrows():
            s, lo, hi = float(row["slope"]), float(row["slope_ci_low"]), float(row["slope_ci_high"])
            if not np.isfinite(s):
                continue
            good = abs(s - ref) <= tol
            weak = lo <= ref + tol and hi >= ref - tol
            states.append("good" if good else "weak" if weak else "bad")
            cell = ", ".join(f"{c[2:]}={row[c]:g}" for c in rows.columns if c.startswith("p_") and r[c].nunique() > 1)
            parts.append(f"{s:+.3f} [{lo:+.3f}, {hi:+.3f}]" + (f" ({cell})" if cell else "") + f" {'within' if good else 'CI meets band' if weak else 'outside'}")
        nums[f"{m} (ref {ref:+.3f})"] = "; ".join(parts) or "no finite fit"
    text = (f"fitted exponent (median over seeds, {int(100 * _LEVEL)}% bootstrap CI) within +-{tol} of the reference for "
            + ", ".join(f"{m}: {ref:+.3f}" for m, ref in methods.items()))
    return _combine(states), text, nums


@register("rate_order")
def rate_order(data: SweepData, fast: str, slow: str, where: dict | None = None, table: str = "rates") -> tuple[str, str, dict]:
    """``fast``'s fitted exponent is more negative than ``slow``'s: good where the CIs are
    separated in that order, weak where only the medians are, bad otherwise."""
    try:
        r = select(data.table(table), where)
    except FileNotFoundError:
        return "not testable", f"the sweep wrote no {table}.csv", {}
    keys = [c for c in r.columns if c.startswith("p_")] or ["cell_id"]
    keys = ["cell_id"] if "cell_id" in r else keys
    a = r[r["optimizer"] == fast].set_index(keys)
    b = r[r["optimizer"] == slow].set_index(keys).reindex(a.index)
    states, parts = [], []
    for k in a.index:
        sa, sb = a.loc[k], b.loc[k]
        if not (np.isfinite(sa["slope"]) and np.isfinite(sb["slope"])):
            continue
        sep = sa["slope_ci_high"] < sb["slope_ci_low"]
        states.append("good" if sep else "weak" if sa["slope"] < sb["slope"] else "bad")
        lab = ", ".join(f"{c[2:]}={sa[c]:g}" for c in r.columns if c.startswith("p_") and r[c].nunique() > 1) or f"cell {k}"
        parts.append(f"{lab}: {fast} {sa['slope']:+.3f} [{sa['slope_ci_low']:+.3f}, {sa['slope_ci_high']:+.3f}] vs "
                     f"{slow} {sb['slope']:+.3f} [{sb['slope_ci_low']:+.3f}, {sb['slope_ci_high']:+.3f}]")
    return _combine(states), f"{fast}'s fitted exponent is below {slow}'s with separated CIs in every cell", {"exponents": "\n".join(parts)}


def _value_at(curve_t: np.ndarray, curve_v: np.ndarray, t: float) -> float:
    """A curve's value at step t, interpolated linearly in log-log between logged steps."""
    ok = (curve_t > 0) & np.isfinite(curve_v) & (curve_v > 0)
    ct, cv = curve_t[ok], curve_v[ok]
    if ct.size == 0 or t < ct[0] or t > ct[-1]:
        return np.nan
    return float(10 ** np.interp(np.log10(t), np.log10(ct), np.log10(cv)))


@register("equal_oracle")
def equal_oracle(data: SweepData, focus: str, rival: str, metric: str = "grad_nuc", where: dict | None = None) -> tuple[str, str, dict]:
    """Compare the tuned runs (the sweep's criterion) of ``focus`` and ``rival`` at equal oracle
    calls: the budget C is the smaller of the two final call counts, and each run's ``metric``
    curve is read at step C / (its calls per step), log-log interpolated. Per cell: the median
    over seeds of log10(focus / rival) at equal calls, with its paired bootstrap CI; good where
    the CI lies below 0 (focus better), weak where the median does, bad otherwise. The same
    ratio at equal steps is reported next to it."""
    _, _, chosen = tuned(data, "criterion")
    runs = data.table("runs").set_index("run_id")
    curves = data.table("curves").sort_values(["run_id", "step"])
    cells = select(data.table("runs").drop_duplicates("cell_id"), where)["cell_id"]
    ch = chosen[chosen["cell_id"].isin(cells) & chosen["optimizer"].isin([focus, rival])]
    if ch.empty:
        return "not testable", "no tuned runs of the two methods in the selected cells", {}
    cur = {rid: (g["step"].to_numpy(float), g[metric].to_numpy(float)) for rid, g in curves[curves["run_id"].isin(ch["run_id"])].groupby("run_id")}
    states, parts = [], []
    for cell, g in ch.groupby("cell_id"):
        a, b = g[g.optimizer == focus].set_index("seed"), g[g.optimizer == rival].set_index("seed")
        seeds = sorted(set(a.index) & set(b.index))
        if not seeds:
            continue
        ra, rb = runs.loc[a.loc[seeds, "run_id"]], runs.loc[b.loc[seeds, "run_id"]]
        steps = float(_manifest(data).get("config", {}).get("steps") or curves["step"].max())
        cps_a = ra["oracle_calls"].to_numpy(float) / steps
        cps_b = rb["oracle_calls"].to_numpy(float) / steps
        budget = np.minimum(cps_a, cps_b) * steps
        va = np.array([_value_at(*cur[rid], c / k) for rid, c, k in zip(a.loc[seeds, "run_id"], budget, cps_a)])
        vb = np.array([_value_at(*cur[rid], c / k) for rid, c, k in zip(b.loc[seeds, "run_id"], budget, cps_b)])
        sa = np.array([_value_at(*cur[rid], steps) for rid in a.loc[seeds, "run_id"]])
        sb = np.array([_value_at(*cur[rid], steps) for rid in b.loc[seeds, "run_id"]])
        med = float(np.log10(np.median(va)) - np.log10(np.median(vb)))
        lo, hi = _log10_ratio_ci([va], [vb], paired=True)
        med_s = float(np.log10(np.median(sa)) - np.log10(np.median(sb)))
        states.append("good" if hi[0] < 0 else "weak" if med < 0 else "bad")
        parts.append(f"{_cell_label(data.table('runs'), cell) or f'cell {cell}'}: at {int(np.median(budget))} calls log10({focus}/{rival}) = {med:+.3f} [{lo[0]:+.3f}, {hi[0]:+.3f}]"
                     f"; at equal steps {med_s:+.3f} ({focus} makes {np.median(cps_a):g} calls/step, {rival} {np.median(cps_b):g})")
    text = f"at equal oracle calls, {focus}'s tuned {metric} is below {rival}'s (paired bootstrap CI of the log ratio below 0)"
    return _combine(states), text, {"comparison": "\n".join(parts)}


@register("param_trend")
def param_trend(data: SweepData, methods: list, param: str, sign: int = -1, metric: str = "final_grad_fro",
                where: dict | None = None) -> tuple[str, str, dict]:
    """How the tuned ``metric`` scales with a swept problem parameter: per method and seed, the
    log-log slope of the seed's value at the tuned point against ``param`` across the selected
    cells; median over seeds with its bootstrap CI. Good where the CI lies on the side of ``sign``,
    weak where the median does, bad otherwise."""
    summary, _, chosen = tuned(data, metric)
    cells = select(summary.drop_duplicates("cell_id"), where)[["cell_id", f"p_{param}"]]
    if cells[f"p_{param}"].nunique() < 2:
        return "not testable", f"fewer than two values of {param} in the selection", {}
    states, nums = [], {"metric": metric}
    for m in methods:
        c = chosen[chosen.optimizer == m].merge(cells, on="cell_id")
        slopes = [(_loglog_fit(g[f"p_{param}"], g["score"])[0]) for _, g in c.groupby("seed")]
        slopes = np.array([s for s in slopes if np.isfinite(s)])
        if slopes.size == 0:
            nums[m] = "no fit"
            continue
        med, lo, hi = (float(v[0]) for v in _median_ci([slopes]))
        inside = (hi < 0) if sign < 0 else (lo > 0)
        states.append("good" if inside else "weak" if np.sign(med) == np.sign(sign) else "bad")
        per = summary[summary.optimizer == m].merge(cells[["cell_id"]], on="cell_id").sort_values(f"p_{param}")
        curve = ", ".join(f"{v:g}: {x:.3g}" for v, x in zip(per[f"p_{param}"], per["median"]))
        nums[m] = f"slope {med:+.3f} [{lo:+.3f}, {hi:+.3f}] over {len(slopes)} seeds; tuned medians by {param}: {curve}"
    text = f"d log({metric}) / d log({param}) has sign {'+' if sign > 0 else '-'} (median over seeds, bootstrap CI excluding 0)"
    return _combine(states), text, nums


@register("pairwise_better")
def pairwise_better(data: SweepData, focus: str, rival: str, metric: str = "criterion", where: dict | None = None) -> tuple[str, str, dict]:
    """The tuned ``focus`` beats the tuned ``rival`` on ``metric`` in each selected cell: good
    where the bootstrap CIs of the medians are separated in focus's favour (the lab's tie rule),
    weak where they overlap, bad where rival wins."""
    adv = select(_advantage_table(data, focus, rival, metric), where)
    if adv.empty:
        return "not testable", "no cell matches the selection", {}
    states = ["good" if o == focus else "weak" if o == "tie" else "bad" for o in adv["outcome"]]
    cols = [c for c in adv.columns if c.startswith("p_") and adv[c].nunique() > 1]
    tab = adv[[*cols, "focus", "rival", "advantage", "outcome"]].rename(columns={"focus": focus, "rival": rival, "advantage": f"log10({rival}/{focus})"})
    nums = {"metric": metric, "cells": len(adv), "cells_focus_better": int((adv.outcome == focus).sum()),
            "cells_tie": int((adv.outcome == "tie").sum()), "cells_rival_better": int((adv.outcome == rival).sum()),
            "table": tab.to_string(index=False, float_format=lambda v: f"{v:.3g}")}
    return _combine(states), f"tuned {focus} below tuned {rival} on {metric} (bootstrap CIs of the medians separated) in every selected cell", nums


@register("lr_tradeoff")
def lr_tradeoff(data: SweepData, methods: list, metric: str = "final_grad_fro", factor: float = 2.0,
                where: dict | None = None) -> tuple[str, str, dict]:
    """A constant step size trades the initial-gap term (too small a step) against the step-size
    floor (too large a step): along the lr grid (other hyperparameters at their tuned values),
    the median ``metric`` at the smallest lr and at the largest lr are both at least ``factor``
    times the tuned optimum, which is interior. Good where all three hold, weak where the optimum
    is interior but one end is within the factor, bad where the optimum sits at an edge."""
    summary, sens, _ = tuned(data, metric)
    summary = select(summary, where)
    hcols = [c for c in sens.columns if c.startswith("h_") and c != "h_lr"]
    states, parts = [], []
    for _, row in summary[summary.optimizer.isin(methods)].iterrows():
        s = sens[(sens.cell_id == row.cell_id) & (sens.optimizer == row.optimizer)]
        for c in hcols:
            s = s[(s[c] == row[c]) | (s[c].isna() & pd.isna(row[c]))]
        s = s.sort_values("h_lr")
        if len(s) < 3:
            continue
        best, lo_end, hi_end = float(row["median"]), float(s["median"].iloc[0]), float(s["median"].iloc[-1])
        interior = s["h_lr"].iloc[0] < row["h_lr"] < s["h_lr"].iloc[-1]
        ok = interior and lo_end >= factor * best and hi_end >= factor * best
        states.append("good" if ok else "weak" if interior else "bad")
        cell = ", ".join(f"{c[2:]}={row[c]:g}" for c in summary.columns if c.startswith("p_") and summary[c].nunique() > 1)
        parts.append(f"{row.optimizer} ({cell}): lr* = {row['h_lr']:.3g}, {metric} smallest lr / lr* = {lo_end / best:.3g}, "
                     f"largest lr / lr* = {hi_end / best:.3g}")
    return (_combine(states), f"the tuned lr is interior and {metric} at both ends of the lr grid is >= {factor}x the optimum",
            {"per_cell": "\n".join(parts)})


# --- envelopes over the whole grid (claim 5: no schedule and no lr converges) ------------------------
def envelope(data: SweepData, method: str, cell: int, metric: str = "gap", running_min: bool = True) -> pd.Series:
    """The best the method does by step t over its whole hyperparameter grid: per grid point the
    median over seeds of ``metric`` (running minimum over the logged steps when ``running_min``),
    then the minimum over grid points, per logged step. For a constant schedule the truncated run
    is the run of horizon t, so this is the per-horizon tuned curve."""
    runs = data.table("runs")
    r = runs[(runs.optimizer == method) & (runs.cell_id == cell)]
    hcols = [c for c in r.columns if c.startswith("h_")]
    point = r.groupby(hcols, dropna=False, sort=False).ngroup().rename("point")
    c = data.table("curves")
    c = c[c.run_id.isin(r.run_id)].merge(pd.DataFrame({"run_id": r.run_id.to_numpy(), "point": point.to_numpy(),
                                                        "ok": (r.status == "ok").to_numpy()}), on="run_id")
    c = c.sort_values(["run_id", "step"])
    v = c[metric].where(c["ok"], np.inf).astype(float)
    if running_min:
        v = v.groupby(c["run_id"]).cummin()
    c = c.assign(v=v)
    med = c.groupby(["point", "step"])["v"].median()
    return med.groupby(level="step").min()


def eps_floor(data: SweepData, param: str = "eps") -> pd.Series:
    """diagonal_abs with coupled pairs: the eps part of the gap, eps * sum_j |d*_2j + d*_2j+1|,
    below which sign descent cannot go. d* depends on the seed only, and the gap at X0 = 0 is
    sum_j |d*_2j - d*_2j+1| + eps * sum_j |d*_2j + d*_2j+1|, linear in eps; the slope, fitted per
    seed across the swept eps values from the step-0 gaps, gives the floor per cell (median over
    seeds). Needs at least two eps values."""
    runs = data.table("runs")
    c = data.table("curves")
    g0 = c[c.step == 0].set_index("run_id")["gap"]
    r = runs.assign(g0=runs.run_id.map(g0)).drop_duplicates(["seed", f"p_{param}"])
    slopes = {}
    for s, g in r.groupby("seed"):
        if g[f"p_{param}"].nunique() >= 2:
            slopes[s] = np.polyfit(g[f"p_{param}"].astype(float), g["g0"].astype(float), 1)[0]
    if not slopes:
        return pd.Series(dtype=float)
    cells = runs.drop_duplicates("cell_id").set_index("cell_id")[f"p_{param}"].astype(float)
    return cells * float(np.median(list(slopes.values())))


def _envelope_rows(data: SweepData, methods: list, where: dict | None, floor: str, window: float):
    runs = select(data.table("runs"), where)
    fl = eps_floor(data, floor)
    for cell in sorted(runs.cell_id.unique()):
        if cell not in fl.index:
            continue
        for m in methods:
            e = envelope(data, m, cell)
            if e.empty:
                continue
            t = e.index.to_numpy(float)
            top = t.max()
            w = (t >= top / window) & (t <= top)
            slope = _loglog_fit(t[w], e.to_numpy(float)[w])[0]
            yield _cell_label(data.table("runs"), cell) or f"cell {cell}", m, float(e.iloc[-1]), float(fl[cell]), slope


@register("stalls")
def stalls(data: SweepData, methods: list, frac: float = 0.5, floor: str = "eps", window: float = 10.0,
           where: dict | None = None, figure: "dict | None" = None) -> tuple[str, str, dict]:
    """No hyperparameter point of the method gets far below the eps floor of diagonal_abs (see
    :func:`eps_floor`): the envelope over the whole grid (:func:`envelope`, best-so-far gap) at
    the last step stays >= ``frac`` x floor. Good where it does; bad where it does not."""
    if figure:
        envelope_figure(data, figure["methods"], data.dir / figure["name"], floor=floor, where=where)
    states, parts = [], []
    for cell, m, last, fl, slope in _envelope_rows(data, methods, where, floor, window):
        states.append("good" if last >= frac * fl else "bad")
        parts.append(f"{m} ({cell}): best gap over the grid {last:.3g} = {last / fl:.2f} x floor {fl:.3g}; last-decade slope {slope:+.2f}")
    if not states:
        return "not testable", "no envelope (needs two or more eps values for the floor)", {}
    return (_combine(states), f"the best-so-far gap over each method's whole grid (every lr, momentum) stays >= {frac} x the eps floor at the last step",
            {"per_cell": "\n".join(parts)})


@register("converges")
def converges(data: SweepData, methods: list, frac: float = 0.1, max_slope: float = -0.2, floor: str = "eps",
              window: float = 10.0, where: dict | None = None, figure: "dict | None" = None) -> tuple[str, str, dict]:
    """The method's envelope (best-so-far gap over its grid) ends below ``frac`` x the eps floor
    and is still falling over the last ``window``-fold of steps (log-log slope <= ``max_slope``).
    Good where both hold, weak where one does, bad otherwise."""
    if figure:
        envelope_figure(data, figure["methods"], data.dir / figure["name"], floor=floor, where=where)
    states, parts = [], []
    for cell, m, last, fl, slope in _envelope_rows(data, methods, where, floor, window):
        below, falling = last <= frac * fl, np.isfinite(slope) and slope <= max_slope
        states.append("good" if below and falling else "weak" if below or falling else "bad")
        parts.append(f"{m} ({cell}): best gap over the grid {last:.3g} = {last / fl:.3g} x floor {fl:.3g}; last-decade slope {slope:+.2f}")
    if not states:
        return "not testable", "no envelope (needs two or more eps values for the floor)", {}
    return (_combine(states), f"the best-so-far gap over the method's grid ends below {frac} x the eps floor and still falls (slope <= {max_slope}) over the last decade",
            {"per_cell": "\n".join(parts)})


@register("envelope_slope")
def envelope_slope(data: SweepData, methods: list, expect: str = "flat", tol: float = 0.05, metric: str = "grad_fro",
                   running_min: bool = True, window: float = 10.0, where: dict | None = None,
                   figure: "dict | None" = None) -> tuple[str, str, dict]:
    """Whether the best a method can do by step t over its whole grid (:func:`envelope` of
    ``metric``, best-so-far when ``running_min``) still improves with the horizon: the log-log
    slope over the last ``window``-fold of steps is >= -``tol`` for ``expect = "flat"`` (no
    convergence at this horizon) or <= -``tol`` for ``"falling"``. Good where it holds, bad
    otherwise."""
    if expect not in ("flat", "falling"):
        raise ValueError(f"envelope_slope: expect: got {expect!r}; allowed: flat, falling")
    if figure:
        envelope_figure(data, figure["methods"], data.dir / figure["name"], metric=metric, running_min=running_min,
                        where=figure.get("where", where))
    runs = select(data.table("runs"), where)
    states, parts = [], []
    pcols = [c for c in runs.columns if c.startswith("p_") and data.table("runs")[c].nunique() > 1]
    for cell in sorted(runs.cell_id.unique()):
        label = ", ".join(f"{c[2:]}={runs.loc[runs.cell_id == cell, c].iloc[0]:g}" for c in pcols) or f"cell {cell}"
        for m in methods:
            e = envelope(data, m, cell, metric, running_min)
            if e.empty:
                continue
            t = e.index.to_numpy(float)
            w = (t >= t.max() / window) & (t > 0)
            slope = _loglog_fit(t[w], e.to_numpy(float)[w])[0]
            if not np.isfinite(slope):
                continue
            ok = slope >= -tol if expect == "flat" else slope <= -tol
            states.append("good" if ok else "bad")
            parts.append(f"{m} ({label}): envelope {metric} {float(e.iloc[-1]):.3g} at step {int(t.max())}, last-{window:g}x slope {slope:+.3f}")
    if not states:
        return "not testable", "no envelope for the selected methods and cells", {}
    verb = f">= -{tol} (stops improving)" if expect == "flat" else f"<= -{tol} (still improving)"
    return (_combine(states), f"log-log slope of the best {'so-far ' if running_min else ''}{metric} over each method's whole grid, last {window:g}x of steps, {verb}",
            {"per_cell": "\n".join(parts)})


@register("theory_agreement")
def theory_agreement(data: SweepData, min_score: float = 0.75, on: str = "grad_nuc", where: dict | None = None) -> tuple[str, str, dict]:
    """Shen et al.'s predicted winner (phase.csv ``predicted_winner``: Muon where A = r L / L_star
    exceeds the threshold, GD below, tie at it) against the measured pairwise verdict of the tuned
    runs, ``vs_<gd>`` on the criterion (``on = "criterion"``) or ``vs_<gd>_grad_nuc`` on the final
    nuclear gradient norm (``on = "grad_nuc"``). Score = fraction of decisive cells (neither label a
    tie) where they agree: reproduced at >= ``min_score``, partly at >= 0.5, not reproduced below."""
    from .theory import agreement

    ph = select(data.table("phase"), where)
    if "predicted_winner" not in ph or "theory_rival" not in ph or ph["theory_rival"].isna().all():
        return "not testable", "phase.csv has no Shen et al. prediction (no L / L_star, or no GD rival)", {}
    rival = ph["theory_rival"].dropna().iloc[0]
    col = f"vs_{rival}" if on == "criterion" else f"vs_{rival}_grad_nuc"
    if col not in ph:
        return "not testable", f"phase.csv has no {col}", {}
    a = agreement(ph["predicted_winner"], ph[col])
    counts = pd.crosstab(ph["predicted_winner"].rename("predicted"), ph[col].rename("measured"))
    nums = {"measured_on": col, "decisive_cells": a["n_decisive"], "agree": _r(a["decisive_score"]), "score_all_cells": _r(a["score"]),
            "measured_ties": a["n_measured_tie"], "A_range": f"{ph['theory_advantage'].min():.3g} .. {ph['theory_advantage'].max():.3g}",
            "predicted_vs_measured": counts.to_string()}
    s = a["decisive_score"]
    status = "not testable" if not np.isfinite(s) else "reproduced" if s >= min_score else "partly" if s >= 0.5 else "not reproduced"
    return status, f"the predicted winner (A = r L / L_star vs 1) matches the measured one ({col}) in >= {min_score:.0%} of the decisive cells", nums


# --- claim figures: drawn into the sweep directory by a rule given ``figure = "<name>.png"`` ---------
def _cell_label(runs: pd.DataFrame, cell) -> str:
    pcols = [c for c in runs.columns if c.startswith("p_") and runs[c].nunique() > 1]
    row = runs[runs.cell_id == cell].iloc[0]
    return ", ".join(f"{c[2:]} = {row[c]:g}" if isinstance(row[c], (int, float, np.number)) else f"{c[2:]} = {row[c]}" for c in pcols)


def envelope_figure(data: SweepData, methods: list, path: Path, metric: str = "gap", running_min: bool = True,
                    floor: str | None = None, where: dict | None = None) -> Path:
    """One panel per selected cell: each method's envelope (best over its grid by step t), with
    the eps floor of diagonal_abs when ``floor`` names the eps parameter."""
    from . import plots

    runs = data.table("runs")
    cells = sorted(select(runs, where).cell_id.unique())
    fl = eps_floor(data, floor) if floor else pd.Series(dtype=float)
    labels = [m for m in dict.fromkeys(runs.optimizer) if m in methods] or list(methods)
    colours = plots.palette(labels)
    fig, axes = plots.plt.subplots(1, len(cells), figsize=(4.2 * len(cells), 3.6), squeeze=False, sharey=True)
    for ax, cell in zip(axes[0], cells):
        for m in labels:
            e = envelope(data, m, cell, metric, running_min)
            e = e[(e.index > 0) & np.isfinite(e.to_numpy(float))]
            ls = "--" if any(k in m for k in ("ef", "mvr", "ssd")) else "-"
            ax.plot(e.index, e.to_numpy(float), ls, color=colours[m], label=m, lw=1.6)
        if cell in fl.index:
            ax.axhline(fl[cell], color="k", lw=1, ls=":", label="eps floor")
        plots._loglog(ax)
        ax.set_title(_cell_label(runs, cell), fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].set_ylabel(f"best {'so-far ' if running_min else ''}{metric} over the grid (median of seeds)")
    axes[0][-1].legend(fontsize=7, frameon=False)
    fig.suptitle("envelope: for each step, the best grid point (every lr and momentum)", fontsize=10)
    return plots._save(fig, path)


def advantage_figure(adv: pd.DataFrame, xcol: str, xname: str, focus: str, rival: str, metric: str, path: Path,
                     hue: "list | None" = None, logx: bool = False) -> Path:
    """The measured advantage log10(rival / focus) of each cell against the claim's variable."""
    from . import plots

    fig, ax = plots.plt.subplots(figsize=(5.2, 3.8))
    groups = [("", adv)] if not hue else list(adv.groupby([f"p_{h}" for h in hue], sort=True))
    colours = plots.sns.color_palette("colorblind", max(len(groups), 3))
    for (key, g), col in zip(groups, colours):
        key = key if isinstance(key, tuple) else (key,)
        lab = ", ".join(f"{h} = {k:g}" for h, k in zip(hue or [], key)) if hue else None
        g = g.sort_values(xcol)
        ax.plot(g[xcol], g["advantage"], "o-" if hue else "o", color=col, label=lab, ms=4, lw=1)
    ax.axhline(0, color="k", lw=0.8)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xname)
    ax.set_ylabel(f"log10({rival} / {focus}), tuned {metric}\n(> 0: {focus} better)")
    if hue:
        ax.legend(fontsize=7, frameon=False)
    return plots._save(fig, path)
