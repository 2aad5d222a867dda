"""The rule ``advantage_trend`` (docs/protocol.md, "Bound rules"): a two-sided trend test of the
measured advantage of one method over another against a predictor, which can fail
(:func:`analysis.trend.trend_test`). Replaces the A > 1 winner prediction, which cannot fail."""

from __future__ import annotations

import numpy as np

from .. import trend as TR
from ..stats import LEVEL
from . import register
from .common import select

SEEN_A = "A_seen"


@register("advantage_trend", pairwise=True)
def advantage_trend(
    data,
    focus: str,
    rival: str,
    against: str,
    sign: int = 1,
    metric: str = "final_grad_nuc",
    alpha: float = TR.ALPHA,
    method: str = "spearman",
    min_cells: int = TR.MIN_CELLS,
    level: float = LEVEL,
    n_boot: int = TR.N_BOOT,
    seed: int = 0,
    rank_column: str = TR.RANK_COLUMN,
    rank_how: str = "max",
    where: dict | None = None,
) -> tuple[str, str, dict]:
    """Does the measured advantage log10(rival / focus) of the tuned ``metric`` (a runs.csv
    column; positive = focus better) rise (``sign = 1``) or fall (``-1``) with ``against``: a
    problem parameter (``p_<against>``) or ``"A_seen"``, Shen et al.'s A = k L / L_star with k
    the rank of the gradients seen (``rank_column``, max over logged steps and runs with
    ``rank_how = "max"``; :func:`analysis.trend.seen_rank_advantage`)? Statistic: ``method``
    ("spearman": rho with a permutation p-value; "kendall": tau), two-sided, over the selected
    cells. Status by :func:`analysis.trend.trend_test`: reproduced = predicted sign with
    p < ``alpha`` (0.05); not reproduced = opposite sign with p < alpha, or a bootstrap CI
    (``level`` 0.95, ``n_boot`` 1999 resamples of cells, RNG ``seed`` 0) on the opposite side of 0;
    partly = no significant trend; not testable = fewer than ``min_cells`` (4) cells or a constant
    predictor."""
    runs = data.table("runs")
    adv = TR.log_advantage(runs, focus, rival, metric, level)
    cells = select(runs.drop_duplicates("cell_id"), where)
    pcols = [c for c in cells.columns if c.startswith("p_") and cells[c].nunique() > 1]
    adv = adv.merge(cells[["cell_id", *pcols]], on="cell_id")
    if against == SEEN_A:
        try:
            curves = data.table("curves")
        except FileNotFoundError:
            curves = None
        try:
            A = TR.seen_rank_advantage(runs, curves, rank_column, rank_how)
        except ValueError as e:
            return "not testable", f"A with the seen gradient rank needs {rank_column!r}: {e}", {}
        if A.empty:
            return "not testable", "the problem reports no L / L_star", {}
        adv = adv.merge(
            A[["cell_id", "theory_rank", "theory_advantage", *(["min_mn"] if "min_mn" in A else [])]], on="cell_id"
        )
        adv["x"] = adv["theory_advantage"].astype(float)
        xname = "A = k L / L_star (k = seen gradient rank)"
    else:
        col = f"p_{against}"
        if col not in cells:
            return "not testable", f"against: {against!r} is not a swept problem parameter", {}
        adv["x"] = adv["cell_id"].map(cells.set_index("cell_id")[col]).astype(float)
        xname = against
    res = TR.trend_test(adv["x"], adv["advantage"], sign, alpha, method, min_cells, level, n_boot, seed)
    name = {"spearman": "Spearman rho", "kendall": "Kendall tau"}[method]
    text = (
        f"the measured log10({rival}/{focus}) of the tuned {metric} {'rises' if sign > 0 else 'falls'} with {xname}: "
        f"two-sided {name}, predicted sign with p < {alpha} (opposite sign with p < {alpha}, or a {level:.0%} CI on "
        "the "
        f"opposite side of 0, fails)"
    )
    nums = {
        "metric": metric,
        "predictor": xname,
        "cells": res["n"],
        "statistic": res["statistic"] if np.isfinite(res["statistic"]) else None,
        "p_value": res["p_value"] if np.isfinite(res["p_value"]) else None,
        "ci": f"[{res['ci_low']:+.3f}, {res['ci_high']:+.3f}]",
        "reason": res["reason"],
        "table": adv.drop(columns=["cell_id"])
        .rename(columns={"x": "predictor", "focus": focus, "rival": rival})
        .to_string(index=False, float_format=lambda v: f"{v:.4g}"),
    }
    return res["status"], text, nums
