"""Envelopes over a method's whole hyperparameter grid and the floor they are measured against
(used by analysis/rules/envelopes.py and the ``envelopes`` figure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .results import Results


def envelope(data: Results, method: str, cell: int, metric: str = "gap", running_min: bool = True) -> pd.Series:
    """The best the method does by step t over its whole hyperparameter grid: per grid point the
    median over seeds of ``metric`` (running minimum over the logged steps when ``running_min``),
    then the minimum over grid points, per logged step. For a constant schedule the truncated run
    is the run of horizon t, so this is the per-horizon tuned curve."""
    runs = data.table("runs")
    r = runs[(runs.optimizer == method) & (runs.cell_id == cell)]
    hcols = [c for c in r.columns if c.startswith("h_")]
    point = r.groupby(hcols, dropna=False, sort=False).ngroup().rename("point")
    c = data.table("curves")
    c = c[c.run_id.isin(r.run_id)].merge(
        pd.DataFrame({"run_id": r.run_id.to_numpy(), "point": point.to_numpy(), "ok": (r.status == "ok").to_numpy()}),
        on="run_id",
    )
    c = c.sort_values(["run_id", "step"])
    v = c[metric].where(c["ok"], np.inf).astype(float)
    if running_min:
        v = v.groupby(c["run_id"]).cummin()
    c = c.assign(v=v)
    med = c.groupby(["point", "step"])["v"].median()
    return med.groupby(level="step").min()


def floor_of(data: Results, name: str = "eps_floor") -> pd.Series:
    """Per cell: the floor a method's gap is measured against, the problem constant ``c_<name>``
    of runs.csv (median over the cell's seeds). diagonal_abs writes ``c_eps_floor`` =
    eps * sum_j |d*_2j + d*_2j+1| (coupled; 0 otherwise), the part of the gap sign descent cannot
    remove (problems/diagonal_abs.py). Empty when runs.csv has no such column."""
    return data.constant(name)
