"""Rules on envelopes over a method's whole grid (claims 4 and 5): the best the method does by
step t over every hyperparameter point stalls at the problem's floor, converges below it, or has a
flat / falling last-decade slope (analysis/envelope.py computes the envelopes and reads the floor)."""

from __future__ import annotations

import numpy as np

from ..envelope import envelope, floor_of
from ..results import Results
from ..stats import loglog_fit
from . import register
from .common import cell_label, combine, select


@register("stalls", figure="envelopes")
def stalls(
    data: Results,
    methods: list,
    frac: float = 0.5,
    floor: str = "eps_floor",
    window: float = 10.0,
    where: dict | None = None,
) -> tuple[str, str, dict]:
    """No hyperparameter point of the method gets far below the problem's floor (the constant
    ``c_<floor>`` of runs.csv: diagonal_abs' eps floor, :func:`analysis.envelope.floor_of`): the
    envelope over the whole grid (:func:`analysis.envelope.envelope`, best-so-far gap) at the last
    step stays >= ``frac`` x floor. Good where it does; bad where it does not."""
    states, parts = [], []
    for cell, m, last, fl, slope in _envelope_rows(data, methods, where, floor, window):
        states.append("good" if last >= frac * fl else "bad")
        parts.append(
            f"{m} ({cell}): best gap over the grid {last:.3g} = {last / fl:.2f} x floor {fl:.3g}; last-decade slope "
            f"{slope:+.2f}"
        )
    if not states:
        return "not testable", f"no envelope, or runs.csv has no floor constant c_{floor}", {}
    return (
        combine(states),
        f"the best-so-far gap over each method's whole grid (every lr, momentum) stays >= {frac} x the eps floor at "
        "the last step",
        {"per_cell": "\n".join(parts)},
    )


@register("converges", figure="envelopes")
def converges(
    data: Results,
    methods: list,
    frac: float = 0.1,
    max_slope: float = -0.2,
    floor: str = "eps_floor",
    window: float = 10.0,
    where: dict | None = None,
) -> tuple[str, str, dict]:
    """The method's envelope (best-so-far gap over its grid) ends below ``frac`` x the floor
    (``c_<floor>``, as in :func:`stalls`) and is still falling over the last ``window``-fold of
    steps (log-log slope <= ``max_slope``). Good where both hold, weak where one does, bad otherwise."""
    states, parts = [], []
    for cell, m, last, fl, slope in _envelope_rows(data, methods, where, floor, window):
        below, falling = last <= frac * fl, np.isfinite(slope) and slope <= max_slope
        states.append("good" if below and falling else "weak" if below or falling else "bad")
        parts.append(
            f"{m} ({cell}): best gap over the grid {last:.3g} = {last / fl:.3g} x floor {fl:.3g}; last-decade slope "
            f"{slope:+.2f}"
        )
    if not states:
        return "not testable", f"no envelope, or runs.csv has no floor constant c_{floor}", {}
    return (
        combine(states),
        f"the best-so-far gap over the method's grid ends below {frac} x the eps floor and still falls (slope <= "
        f"{max_slope}) over the last decade",
        {"per_cell": "\n".join(parts)},
    )


@register("envelope_slope", figure="envelopes")
def envelope_slope(
    data: Results,
    methods: list,
    expect: str = "flat",
    tol: float = 0.05,
    metric: str = "grad_fro",
    running_min: bool = True,
    window: float = 10.0,
    where: dict | None = None,
) -> tuple[str, str, dict]:
    """Whether the best a method can do by step t over its whole grid (:func:`analysis.envelope.envelope` of
    ``metric``, best-so-far when ``running_min``) still improves with the horizon: the log-log
    slope over the last ``window``-fold of steps is >= -``tol`` for ``expect = "flat"`` (no
    convergence at this horizon) or <= -``tol`` for ``"falling"``. Good where it holds, bad
    otherwise."""
    if expect not in ("flat", "falling"):
        raise ValueError(f"envelope_slope: expect: got {expect!r}; allowed: flat, falling")
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
            slope = loglog_fit(t[w], e.to_numpy(float)[w])[0]
            if not np.isfinite(slope):
                continue
            ok = slope >= -tol if expect == "flat" else slope <= -tol
            states.append("good" if ok else "bad")
            parts.append(
                f"{m} ({label}): envelope {metric} {float(e.iloc[-1]):.3g} at step {int(t.max())}, last-{window:g}x "
                f"slope {slope:+.3f}"
            )
    if not states:
        return "not testable", "no envelope for the selected methods and cells", {}
    verb = f">= -{tol} (stops improving)" if expect == "flat" else f"<= -{tol} (still improving)"
    return (
        combine(states),
        f"log-log slope of the best {'so-far ' if running_min else ''}{metric} over each method's whole grid, last "
        f"{window:g}x of steps, {verb}",
        {"per_cell": "\n".join(parts)},
    )


def _envelope_rows(data: Results, methods: list, where: dict | None, floor: str, window: float):
    runs = select(data.table("runs"), where)
    fl = floor_of(data, floor)
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
            slope = loglog_fit(t[w], e.to_numpy(float)[w])[0]
            yield cell_label(data.table("runs"), cell) or f"cell {cell}", m, float(e.iloc[-1]), float(fl[cell]), slope
