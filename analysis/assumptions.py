"""Assumption checks: what a claim's theorem assumes, measured on the instance the lab ran.

A theorem's bound holds under named assumptions (smoothness, PL, bounded variance, a uniform
gradient bound along the iterates, ...). A claim page states them and shows, for each, whether the
simulated instance satisfies it, from the ground truth the problems write (runs.csv ``c_*``
constants) and from the iterates themselves (curves.csv at logged steps). A claim tested outside
its theorem's regime is flagged as such (lab/claims.py).

A check is ``fn(data: Results, **params) -> (status, text, numbers)`` registered in
:data:`CHECKS`, with status ``holds`` / ``violated`` / ``not checked``. The checks read the tuned
runs (each (cell, optimizer)'s tuned point, every seed): the iterates the verdict is about. Checks
at logged steps see ~log_points iterates, not every step; each says so in its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .registry import Registry
from .results import Results

HOLDS, VIOLATED, NOT_CHECKED = "holds", "violated", "not checked"
STATUSES = (HOLDS, VIOLATED, NOT_CHECKED)
CHECKS = Registry("kind")


@dataclass
class Check:
    name: str
    status: str
    text: str
    numbers: dict = field(default_factory=dict)


def _num(x) -> float | None:
    x = float(x)
    return round(x, 6) if np.isfinite(x) else None


def _tuned_runs(data: Results, methods: list | None) -> pd.DataFrame:
    _, _, chosen = data.tuned()
    runs = data.runs[data.runs["run_id"].isin(chosen["run_id"])]
    return runs if methods is None else runs[runs["optimizer"].isin(methods)]


def _tuned_curves(data: Results, methods: list | None, steps_from: int = 1) -> pd.DataFrame:
    runs = _tuned_runs(data, methods)
    cur = data.curves
    cur = cur[cur["run_id"].isin(runs["run_id"]) & (cur["step"] >= steps_from)]
    return cur.merge(runs[["run_id", "cell_id", "optimizer", "status", "diverged_step"]], on="run_id")


def _before_divergence(cur: pd.DataFrame) -> pd.DataFrame:
    d = pd.to_numeric(cur["diverged_step"], errors="coerce")  # -1 (or empty): never diverged
    return cur[~((d >= 0) & (cur["step"] >= d))]


@CHECKS.register("constant")
def constant(
    data: Results, name: str, low: float | None = None, high: float | None = None, low_open: bool = False
) -> tuple[str, str, dict]:
    """The ground-truth constant ``c_<name>`` of every cell lies in [low, high] (``low_open``:
    (low, high]); e.g. PL needs mu > 0, smoothness a finite L."""
    col = f"c_{name}"
    if col not in data.runs:
        return NOT_CHECKED, f"the problem reports no constant {name!r}", {}
    v = data.runs[col].astype(float)
    ok = np.isfinite(v)
    if low is not None:
        ok &= (v > low) if low_open else (v >= low)
    if high is not None:
        ok &= v <= high
    lo_s = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    hi_s = "" if high is None else f"<= {high:g}"
    text = f"{name} {' and '.join(s for s in (lo_s, hi_s) if s) or 'finite'} in every run (runs.csv {col})"
    nums = {f"{name}_min": _num(v.min()), f"{name}_max": _num(v.max()), "runs_outside": int((~ok).sum())}
    return (HOLDS if ok.all() else VIOLATED), text, nums


@CHECKS.register("pl_along_iterates")
def pl_along_iterates(
    data: Results, mu: str = "mu", grad: str = "grad_fro", methods: list | None = None, rtol: float = 1e-6
) -> tuple[str, str, dict]:
    """The PL inequality ||grad f(X)||^2 >= 2 mu (f(X) - f*) at every logged iterate of the tuned
    runs (Frobenius gradient), with mu the problem's stated constant; reports the smallest
    empirical ratio ||grad||^2 / (2 gap) seen, an upper estimate of the PL constant on the path."""
    col = f"c_{mu}"
    if col not in data.runs:
        return NOT_CHECKED, f"the problem reports no PL constant {mu!r}", {}
    cur = _before_divergence(_tuned_curves(data, methods))
    if grad not in cur:
        return NOT_CHECKED, f"curves.csv has no {grad!r}", {}
    cur = cur.merge(data.runs[["run_id", col]], on="run_id")
    gap = cur["gap"].astype(float)
    use = np.isfinite(gap) & (gap > 0)
    if not use.any():
        return NOT_CHECKED, "no logged iterate with a positive gap", {}
    ratio = (cur.loc[use, grad].astype(float) ** 2) / (2 * gap[use])
    stated = cur.loc[use, col].astype(float)
    bad = ratio < stated * (1 - rtol)
    text = (
        f"||grad f||_F^2 >= 2 {mu} (f - f*) at every logged iterate of the tuned runs "
        f"({int(use.sum())} iterates; logged steps only)"
    )
    nums = {
        "stated_mu_min": _num(stated.min()),
        "empirical_pl_min": _num(ratio.min()),
        "iterates_checked": int(use.sum()),
        "iterates_violating": int(bad.sum()),
    }
    return (VIOLATED if bad.any() else HOLDS), text, nums


@CHECKS.register("gradient_bound")
def gradient_bound(
    data: Results,
    grad: str = "grad_fro",
    bound: float | None = None,
    methods: list | None = None,
    max_growth: float = 100.0,
) -> tuple[str, str, dict]:
    """A uniform bound on the exact gradient along the iterates (e.g. the last-iterate PL results
    of arXiv 2509.15816 v5 assume one): G = the largest logged ||grad f(X_t)|| of the tuned runs.
    With ``bound``: holds when G <= bound. Without: holds when G is finite and at most
    ``max_growth`` times the largest initial gradient (a run whose gradient grows without bound is
    outside the assumption); the measured G is reported either way."""
    cur = _before_divergence(_tuned_curves(data, methods, steps_from=0))
    if grad not in cur:
        return NOT_CHECKED, f"curves.csv has no {grad!r}", {}
    g = cur[grad].astype(float)
    g0 = cur.loc[cur["step"] == 0, grad].astype(float)
    G, G0 = float(g.max()), float(g0.max()) if len(g0) else np.nan
    diverged = _tuned_runs(data, methods)["status"].ne("ok").sum()
    if bound is not None:
        ok = np.isfinite(G) and G <= bound and diverged == 0
        text = f"max over logged iterates of the exact {grad} <= {bound:g}, no tuned run diverged"
    else:
        ok = np.isfinite(G) and np.isfinite(G0) and G <= max_growth * G0 and diverged == 0
        text = (
            f"the logged exact gradient {grad} stays bounded along the tuned iterates "
            f"(G <= {max_growth:g} x its largest initial value; no tuned run diverged)"
        )
    nums = {"G": _num(G), "G_initial": _num(G0), "tuned_runs_diverged": int(diverged)}
    return (HOLDS if ok else VIOLATED), text, nums


@CHECKS.register("noise")
def noise(data: Results, stochastic: bool = True, name: str = "noise_var_opt") -> tuple[str, str, dict]:
    """The oracle's variance at the optimum (``c_noise_var_opt``): > 0 in every cell for a
    stochastic theorem (``stochastic = true``), = 0 for a deterministic one."""
    col = f"c_{name}"
    if col not in data.runs:
        return NOT_CHECKED, f"the problem reports no {name!r}", {}
    v = data.runs[col].astype(float)
    ok = (v > 0).all() if stochastic else (v == 0).all()
    text = f"gradient-noise variance at X* {'> 0' if stochastic else '= 0'} in every cell (runs.csv {col})"
    return (HOLDS if ok else VIOLATED), text, {"variance_min": _num(v.min()), "variance_max": _num(v.max())}


@CHECKS.register("gradient_rank")
def gradient_rank(
    data: Results, at_most: str | float | None = None, methods: list | None = None
) -> tuple[str, str, dict]:
    """The numerical rank of the exact gradients the tuned runs saw (curves.csv ``grad_rank``,
    logged steps >= 1), reported per cell; with ``at_most`` (a number, or the name of a constant
    such as ``hessian_rank``): holds when the rank seen never exceeds it."""
    cur = _tuned_curves(data, methods)
    if "grad_rank" not in cur:
        return NOT_CHECKED, "curves.csv has no grad_rank column", {}
    seen = cur.groupby("cell_id")["grad_rank"].max()
    nums = {"rank_seen_min": _num(seen.min()), "rank_seen_max": _num(seen.max())}
    if at_most is None:
        return HOLDS, "numerical rank of the exact gradient at logged steps (reported)", nums
    if isinstance(at_most, str):
        lim = data.runs.groupby("cell_id")[f"c_{at_most}"].max().reindex(seen.index).astype(float)
    else:
        lim = pd.Series(float(at_most), index=seen.index)
    bad = seen > lim
    nums["cells_above"] = int(bad.sum())
    return (VIOLATED if bad.any() else HOLDS), f"gradient rank seen <= {at_most} in every cell", nums


def check_all(out_dir: "str | Path | Results", entries: list[dict]) -> list[Check]:
    """Each assumption ({name, kind, params}) checked on the result directory, in order."""
    data = out_dir if isinstance(out_dir, Results) else Results(out_dir)
    out = []
    for e in entries:
        status, text, nums = CHECKS.get(e["kind"])(data, **e.get("params", {}))
        if status not in STATUSES:
            raise ValueError(f"{e['kind']}: returned status {status!r}; allowed: {', '.join(STATUSES)}")
        out.append(Check(name=e["name"], status=status, text=text, numbers=nums))
    return out
