"""Rules on how a tuned metric moves with a problem parameter or along the lr grid."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..results import Results
from ..stats import loglog_fit, median_ci
from . import register
from .common import combine, select


@register("param_trend")
def param_trend(
    data: Results, methods: list, param: str, sign: int = -1, metric: str = "final_grad_fro", where: dict | None = None
) -> tuple[str, str, dict]:
    """How the tuned ``metric`` scales with a swept problem parameter: per method and seed, the
    log-log slope of the seed's value at the tuned point against ``param`` across the selected
    cells; median over seeds with its bootstrap CI. Good where the CI lies on the side of ``sign``,
    weak where the median does, bad otherwise."""
    summary, _, chosen = data.tuned(metric)
    cells = select(summary.drop_duplicates("cell_id"), where)[["cell_id", f"p_{param}"]]
    if cells[f"p_{param}"].nunique() < 2:
        return "not testable", f"fewer than two values of {param} in the selection", {}
    states, nums = [], {"metric": metric}
    for m in methods:
        c = chosen[chosen.optimizer == m].merge(cells, on="cell_id")
        slopes = [(loglog_fit(g[f"p_{param}"], g["score"])[0]) for _, g in c.groupby("seed")]
        slopes = np.array([s for s in slopes if np.isfinite(s)])
        if slopes.size == 0:
            nums[m] = "no fit"
            continue
        med, lo, hi = (float(v[0]) for v in median_ci([slopes]))
        inside = (hi < 0) if sign < 0 else (lo > 0)
        states.append("good" if inside else "weak" if np.sign(med) == np.sign(sign) else "bad")
        per = summary[summary.optimizer == m].merge(cells[["cell_id"]], on="cell_id").sort_values(f"p_{param}")
        curve = ", ".join(f"{v:g}: {x:.3g}" for v, x in zip(per[f"p_{param}"], per["median"]))
        nums[m] = f"slope {med:+.3f} [{lo:+.3f}, {hi:+.3f}] over {len(slopes)} seeds; tuned medians by {param}: {curve}"
    text = (
        f"d log({metric}) / d log({param}) has sign {'+' if sign > 0 else '-'} "
        "(median over seeds, bootstrap CI excluding 0)"
    )
    return combine(states), text, nums


@register("lr_tradeoff")
def lr_tradeoff(
    data: Results, methods: list, metric: str = "final_grad_fro", factor: float = 2.0, where: dict | None = None
) -> tuple[str, str, dict]:
    """A constant step size trades the initial-gap term (too small a step) against the step-size
    floor (too large a step): along the lr grid (other hyperparameters at their tuned values),
    the median ``metric`` at the smallest lr and at the largest lr are both at least ``factor``
    times the tuned optimum, which is interior. Good where all three hold, weak where the optimum
    is interior but one end is within the factor, bad where the optimum sits at an edge."""
    summary, sens, _ = data.tuned(metric)
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
        cell = ", ".join(
            f"{c[2:]}={row[c]:g}" for c in summary.columns if c.startswith("p_") and summary[c].nunique() > 1
        )
        parts.append(
            f"{row.optimizer} ({cell}): lr* = {row['h_lr']:.3g}, {metric} smallest lr / lr* = {lo_end / best:.3g}, "
            f"largest lr / lr* = {hi_end / best:.3g}"
        )
    return (
        combine(states),
        f"the tuned lr is interior and {metric} at both ends of the lr grid is >= {factor}x the optimum",
        {"per_cell": "\n".join(parts)},
    )
