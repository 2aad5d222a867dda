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
    """The runs at each (cell, optimizer)'s tuned hyperparameter point (every seed)."""
    runs, summary = data.table("runs"), data.table("summary")
    h = [c for c in summary.columns if c.startswith("h_") and c in runs.columns and summary[c].notna().any()]
    keys = ["cell_id", "optimizer"]
    chosen = summary[keys + h]
    merged = runs.merge(chosen, on=keys, suffixes=("", "_tuned"))
    same = np.ones(len(merged), bool)
    for c in h:
        a, b = merged[c], merged[f"{c}_tuned"]
        same &= (a == b) | (a.isna() & b.isna())
    return merged[same][runs.columns]


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
