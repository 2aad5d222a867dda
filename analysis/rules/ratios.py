"""Rules on the tuned medians, cell by cell: ratio bounds, winner regions, pairwise wins, the
advantage tracking a claim's variable. (Shen et al.'s A > 1 winner prediction is gone: A = r L / L_star >= 1
for r = min(m, n), so it could not fail; the rule ``advantage_trend`` in ``advantage.py`` tests the
trend of the advantage against A with the gradient rank seen.)"""
from __future__ import annotations

import numpy as np

from ..results import Results
from ..stats import loglog_fit
from . import register
from .common import advantage_against, advantage_table, combine, pairwise, select, spearman


@register("ratio_bound", pairwise=True)
def ratio_bound(data: Results, focus: str, rival: str, bound: float, where: dict | None = None) -> tuple[str, str, dict]:
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


@register("winner_regions", pairwise=True)
def winner_regions(data: Results, a: str, b: str, x: str, y: str, where: dict | None = None) -> tuple[str, str, dict]:
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


@register("pairwise_better", pairwise=True)
def pairwise_better(data: Results, focus: str, rival: str, metric: str = "criterion", where: dict | None = None) -> tuple[str, str, dict]:
    """The tuned ``focus`` beats the tuned ``rival`` on ``metric`` in each selected cell: good
    where the bootstrap CIs of the medians are separated in focus's favour (the lab's tie rule),
    weak where they overlap, bad where rival wins."""
    adv = select(advantage_table(data, focus, rival, metric), where)
    if adv.empty:
        return "not testable", "no cell matches the selection", {}
    states = ["good" if o == focus else "weak" if o == "tie" else "bad" for o in adv["outcome"]]
    cols = [c for c in adv.columns if c.startswith("p_") and adv[c].nunique() > 1]
    tab = adv[[*cols, "focus", "rival", "advantage", "outcome"]].rename(columns={"focus": focus, "rival": rival, "advantage": f"log10({rival}/{focus})"})
    nums = {"metric": metric, "cells": len(adv), "cells_focus_better": int((adv.outcome == focus).sum()),
            "cells_tie": int((adv.outcome == "tie").sum()), "cells_rival_better": int((adv.outcome == rival).sum()),
            "table": tab.to_string(index=False, float_format=lambda v: f"{v:.3g}")}
    return combine(states), f"tuned {focus} below tuned {rival} on {metric} (bootstrap CIs of the medians separated) in every selected cell", nums


@register("advantage_tracks", figure="advantage", pairwise=True)
def advantage_tracks(data: Results, focus: str, rival: str, against: str, sign: int = 1,
                     metric: str = "best_grad_nuc", within: "str | list | None" = None, alpha: float = 0.05,
                     where: dict | None = None) -> tuple[str, str, dict]:
    """Spearman correlation between ``against`` (a problem parameter, or ``theory_advantage`` =
    r L / L_star of Shen et al. from phase.csv, taken in log) and the measured advantage
    log10(rival / focus) of the tuned ``metric`` (positive = focus better), per group of
    ``within`` (or over all selected cells). A group agrees when rho has the sign ``sign`` with
    p < ``alpha`` (two-sided), is weak when it has that sign without significance, and
    contradicts otherwise. Reproduced when every group agrees; not reproduced when none agrees or
    is weak."""
    adv, xname, why = advantage_against(data, focus, rival, against, metric, where)
    if why:
        return "not testable", why, {}
    within = [within] if isinstance(within, str) else list(within or [])
    groups = [(None, adv)] if not within else list(adv.groupby([f"p_{w}" for w in within], sort=True))
    states, nums, lines = [], {"metric": metric, "cells": len(adv)}, []
    for key, g in groups:
        rho, p, n = spearman(g["x"], g["advantage"])
        if not np.isfinite(rho):
            continue
        ok_sign = np.sign(rho) == np.sign(sign)
        states.append("good" if ok_sign and p < alpha else "weak" if ok_sign else "bad")
        slope = loglog_fit(10 ** g["x"], 10 ** g["advantage"])[0] if against == "theory_advantage" else np.nan
        key = key if isinstance(key, tuple) or key is None else (key,)
        label = "all cells" if key is None else ", ".join(f"{w} = {k:g}" if isinstance(k, (int, float, np.number)) else f"{w} = {k}" for w, k in zip(within, key))
        lines.append(f"{label}: rho = {rho:+.2f} (p = {p:.2g}, n = {n})" + (f", slope d adv / d log A = {slope:+.2f}" if np.isfinite(slope) else ""))
    pivot_cols = [c for c in adv.columns if c.startswith("p_") and adv[c].nunique() > 1]
    tab = adv[[*pivot_cols, "x", "focus", "rival", "advantage", "outcome"]].copy()
    tab = tab.rename(columns={"x": xname, "focus": f"{focus}", "rival": f"{rival}", "advantage": f"log10({rival}/{focus})"})
    nums["spearman"] = "; ".join(lines) if lines else "no group with 3+ finite cells"
    nums["cells_focus_better"] = int((adv["outcome"] == focus).sum())
    nums["cells_rival_better"] = int((adv["outcome"] == rival).sum())
    nums["cells_tie"] = int((adv["outcome"] == "tie").sum())
    nums["table"] = tab.to_string(index=False, float_format=lambda v: f"{v:.3g}")
    direction = "rises" if sign > 0 else "falls"
    text = (f"the measured advantage log10({rival}/{focus}) of the tuned {metric} {direction} with {xname}"
            f"{'' if not within else ' within each ' + ' x '.join(within)}: Spearman rho of sign {'+' if sign > 0 else '-'} with p < {alpha}")
    return combine(states), text, nums
