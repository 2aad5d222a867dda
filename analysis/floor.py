"""The stated floor for zero gaps, in one place: the phase table (winner and ratio maps), the
performance profiles and the lr-sensitivity figure all clip criterion values at it.

A run can reach a gap of exactly zero (Muon on the noiseless assoc_memory: the softmax saturates
and f - f* rounds to 0 in float64). A log-ratio against 0, or a profile ratio over a best of 0, is
then meaningless (``log10(TINY)`` gave "-28 decades"; the profile dropped every such cell; the
sensitivity panels, on log axes, lost the method). The floor is relative to the arithmetic of the
sweep and to the problem, not to the other methods:

    floor(cell) = eps(dtype) * (median over the cell's runs of the criterion's quantity at step 0)

``eps`` is the machine epsilon of the sweep's dtype (manifest ``dtype``: 1.19e-7 for float32,
2.22e-16 for float64) and the quantity is the one the criterion measures (:data:`QUANTITY`: the
gap, or the nuclear gradient norm for ``min_grad_nuc``), read from curves.csv at step 0, which
every run of the cell shares. A value at or below the floor is below the resolution of that
arithmetic relative to where the run started, so two methods there are not told apart (a tie)
and a ratio against it is a bound ("<=" / ">=" on the maps). Step counts (``steps_to_target``)
are floored at one step. Without curves.csv (or the quantity in it) the base is the largest finite
tuned median of the cell. Not the problem's ``c_eps_floor`` (analysis/envelope.py): that is a
property of diagonal_abs (the gap sign descent cannot remove), zero elsewhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# what each tuning criterion (analysis.options.CRITERIA) measures: the curves.csv column whose
# step-0 value scales the floor; None: a step count, floored at one step
QUANTITY = {
    "final_gap": "gap",
    "min_grad_nuc": "grad_nuc",
    "best_gap": "gap",
    "auc_log_gap": "gap",
    "steps_to_target": None,
}
STEP_FLOOR = 1.0


def eps_of(dtype: "str | None") -> float:
    """Machine epsilon of the sweep's dtype (float64 when the manifest does not say)."""
    return float(np.finfo(np.dtype(dtype or "float64")).eps)


def cell_floors(
    summary: pd.DataFrame, criterion: str, dtype: "str | None", curves: "pd.DataFrame | None", runs: pd.DataFrame
) -> pd.Series:
    """The floor per cell_id (see the module docstring) for the tuned ``summary`` (cell_id,
    median) of ``criterion``; ``curves`` may be None (no curves.csv)."""
    cells = pd.Index(sorted(summary["cell_id"].unique()), name="cell_id")
    if criterion not in QUANTITY:
        raise ValueError(f"criterion: got {criterion!r}; allowed: {', '.join(QUANTITY)}")
    q = QUANTITY[criterion]
    if q is None:
        return pd.Series(STEP_FLOOR, index=cells, name="floor")
    med = summary["median"].astype(float)
    base = med.where(np.isfinite(med)).groupby(summary["cell_id"]).max().reindex(cells)
    if curves is not None and q in curves:
        c0 = curves.loc[curves["step"] == 0, ["run_id", q]].merge(runs[["run_id", "cell_id"]], on="run_id")
        start = c0[q].astype(float).where(lambda v: np.isfinite(v) & (v > 0)).groupby(c0["cell_id"]).median()
        base = start.reindex(cells).fillna(base)
    return (eps_of(dtype) * base.fillna(0.0)).rename("floor")


def floors_of(data, criterion: str) -> pd.Series:
    """:func:`cell_floors` of a :class:`analysis.results.Results` for ``criterion``."""
    summary = data.tuned(criterion)[0]
    return cell_floors(summary, criterion, dtype_of(data), data.curves if data.has("curves") else None, data.runs)


def dtype_of(data) -> "str | None":
    """The sweep's dtype from its config (None: float64)."""
    return data.config.get("dtype")


def clip(df: pd.DataFrame, floors: "pd.Series | None", cols=("median", "ci_low", "ci_high")) -> pd.DataFrame:
    """``df`` (with ``cell_id``) with ``cols`` raised to the cell's floor: the one place the floor
    is applied (phase table, profiles, sensitivity figure). +inf (failures) stays +inf; NaN stays."""
    if floors is None or df.empty:
        return df
    f = _row_floors(df, floors, 0.0)
    out = df.copy()
    for c in cols:
        if c in out:
            v = out[c].to_numpy(float)
            out[c] = np.where(np.isnan(v), v, np.maximum(v, f))
    return out


def at_floor(df: pd.DataFrame, floors: "pd.Series | None", col: str = "median") -> np.ndarray:
    """Rows of ``df`` whose ``col`` is at or below the cell's floor (a cell without one: never)."""
    if floors is None or df.empty:
        return np.zeros(len(df), bool)
    return df[col].to_numpy(float) <= _row_floors(df, floors, -np.inf)


def _row_floors(df: pd.DataFrame, floors: pd.Series, missing: float) -> np.ndarray:
    """The floor of each row's cell (``missing`` where the cell has none)."""
    return df["cell_id"].map(floors).fillna(missing).to_numpy(float)


def any_at_floor(phase: pd.DataFrame) -> bool:
    """Whether any method of a phase table sits at its cell's floor (its ``at_floor`` column)."""
    return "at_floor" in phase and bool(phase["at_floor"].fillna("").astype(bool).any())


def describe(criterion: str, dtype: "str | None") -> str:
    """The floor in words, for figures and the page."""
    q = QUANTITY.get(criterion)
    if q is None:
        return f"floor: {criterion} counted as at least {STEP_FLOOR:g} step"
    eps = f"{eps_of(dtype):.3g}"
    return f"floor: {criterion} below {eps} x the cell's initial {q} ({dtype or 'float64'} eps) counted at it"
