"""The phase table: per cell, the winner among the tuned optimizers, the runner-up, the margin,
a tie flag where the winner's and runner-up's confidence intervals overlap, and the log10 ratio
of the focus optimizer's criterion to each rival's."""
from __future__ import annotations

import numpy as np
import pandas as pd

TINY = 1e-30  # floor before taking logs (a gap can reach exactly zero)


def log10_ratio(a, b) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.log10(np.maximum(a, TINY)) - np.log10(np.maximum(b, TINY))
    return np.where(np.isinf(a) & np.isinf(b), np.nan, r)


def phase_table(summary: pd.DataFrame, cells: pd.DataFrame, focus: str) -> pd.DataFrame:
    rows = []
    for cell_id, g in summary.groupby("cell_id", sort=True):
        g = g.sort_values(["median", "ci_high"], kind="stable")
        win, run = g.iloc[0], (g.iloc[1] if len(g) > 1 else None)
        row = {"cell_id": cell_id, "winner": win["optimizer"], "winner_median": win["median"]}
        if run is not None:
            row.update(
                runner_up=run["optimizer"],
                runner_up_median=run["median"],
                margin=float(run["median"] / max(win["median"], TINY)) if np.isfinite(run["median"]) else np.inf,
                tie=bool(win["ci_high"] >= run["ci_low"]),
            )
        else:
            row.update(runner_up=None, runner_up_median=np.nan, margin=np.nan, tie=False)
        by = g.set_index("optimizer")
        row["winner_lr_at_edge"] = bool(by.loc[win["optimizer"], "lr_at_edge"])
        if focus in by.index:
            for rival in by.index:
                if rival != focus:
                    row[f"log10_ratio_{rival}"] = float(log10_ratio(by.loc[focus, "median"], by.loc[rival, "median"]))
        rows.append(row)
    phase = pd.DataFrame(rows)
    pcols = [c for c in cells.columns if c.startswith("p_")]
    return cells[["cell_id", *pcols]].merge(phase, on="cell_id")
