"""What several rules (and the claim figures) share: selecting cells, pairing two tuned methods
cell by cell, the tuned runs, cell labels, and the state -> status aggregation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..results import Results
from ..stats import log10_ratio, verdict


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
    out["outcome"] = [
        verdict(a, b, *v)
        for v in zip(pa["ci_low"], pa["ci_high"], pb["ci_low"], pb["ci_high"], pa["median"], pb["median"])
    ]
    out["log10_ratio"] = log10_ratio(pa["median"], pb["median"])
    return out.reset_index()


def advantage_table(data: Results, focus: str, rival: str, metric: str) -> pd.DataFrame:
    """Per cell: the tuned medians of focus and rival on ``metric`` and
    advantage = log10(rival / focus) (positive = focus better), with the tie-rule outcome."""
    summary, _, _ = data.tuned(metric)
    pa = summary[summary.optimizer == focus].set_index("cell_id")
    pb = summary[summary.optimizer == rival].set_index("cell_id").reindex(pa.index)
    out = pa[[c for c in pa.columns if c.startswith("p_")]].copy()
    out["focus"], out["rival"] = pa["median"], pb["median"]
    out["advantage"] = -log10_ratio(pa["median"], pb["median"])
    out["outcome"] = [
        verdict(focus, rival, *v)
        for v in zip(pa["ci_low"], pa["ci_high"], pb["ci_low"], pb["ci_high"], pa["median"], pb["median"])
    ]
    return out.reset_index()


def advantage_against(
    data: Results, focus: str, rival: str, against: str, metric: str, where: dict | None
) -> tuple[pd.DataFrame, str, str | None]:
    """:func:`advantage_table` on the selected cells with ``x`` = the claim's variable: a problem
    parameter, or log10 of Shen et al.'s A (``against = "theory_advantage"``, from phase.csv).
    Returns (table, name of x, reason it cannot be tested or None)."""
    adv = select(advantage_table(data, focus, rival, metric), where)
    if adv.empty:
        return adv, against, "no cell matches the selection"
    if against == "theory_advantage":
        ph = data.table("phase")
        if "theory_advantage" not in ph:
            return adv, against, "phase.csv has no theory_advantage (the problem reports no L / L_star)"
        adv = adv.merge(ph[["cell_id", "theory_advantage"]], on="cell_id", how="left")
        adv["x"] = np.log10(adv["theory_advantage"].astype(float))
        return adv, "log10(r L / L_star)", None
    adv["x"] = adv[f"p_{against}"].astype(float)
    return adv, against, None


def tuned_runs(data: Results) -> pd.DataFrame:
    """runs.csv rows of each (cell, optimizer)'s tuned point by the sweep's own criterion (every seed)."""
    _, _, chosen = data.tuned()
    return data.runs[data.runs["run_id"].isin(chosen["run_id"])]


def cell_label(runs: pd.DataFrame, cell) -> str:
    """'name = value, ...' of the parameters that vary across the sweep, for one cell."""
    pcols = [c for c in runs.columns if c.startswith("p_") and runs[c].nunique() > 1]
    row = runs[runs.cell_id == cell].iloc[0]
    return ", ".join(
        f"{c[2:]} = {row[c]:g}" if isinstance(row[c], (int, float, np.number)) else f"{c[2:]} = {row[c]}" for c in pcols
    )


def rnd(x, nd: int = 3):
    """Round a number for a verdict page (None for NaN / inf, so the JSON stays valid)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return x
    if not np.isfinite(x):
        return None if np.isnan(x) else ("inf" if x > 0 else "-inf")
    return float(f"{x:.{nd}g}") if abs(x) < 1e-3 or abs(x) >= 1e4 else round(x, nd)


def spearman(x, y) -> tuple[float, float, int]:
    """(rho, two-sided p, n) over the finite pairs; NaN below 3 pairs or without variation."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.unique(x[ok]).size < 2 or np.unique(y[ok]).size < 2:
        return np.nan, np.nan, int(ok.sum())
    rho, p = sps.spearmanr(x[ok], y[ok])
    return float(rho), float(p), int(ok.sum())


def combine(states: list[str]) -> str:
    """'good' / 'weak' / 'bad' per checked item -> reproduced (all good), not reproduced (none
    good and none weak), partly otherwise; not testable when nothing was checked."""
    if not states:
        return "not testable"
    if all(s == "good" for s in states):
        return "reproduced"
    if not any(s in ("good", "weak") for s in states):
        return "not reproduced"
    return "partly"
