"""Rules on fitted exponents: rates near a reference, one rate below another, the comparison at
equal oracle calls, and the per-mode exponent of the spectrum-weighted decay."""

from __future__ import annotations

import numpy as np

from .. import theory
from ..options import LEVEL
from ..results import Results
from ..stats import log10_ratio_ci, loglog_fit
from . import register
from .common import cell_label, combine, select, tuned_runs


@register("rate_near")
def rate_near(
    data: Results, methods: dict, tol: float, where: dict | None = None, table: str = "rates"
) -> tuple[str, str, dict]:
    """Fitted exponents (rates.csv: median over seeds of the per-seed log-log slope, with its
    bootstrap CI) near a reference: ``methods`` = {label: reference exponent}. Per (cell, method):
    good when |median - ref| <= ``tol``, weak when only the CI meets [ref - tol, ref + tol], bad
    otherwise."""
    try:
        r = select(data.table(table), where)
    except FileNotFoundError:
        return "not testable", f"the sweep wrote no {table}.csv", {}
    states, nums = [], {}
    for m, ref in methods.items():
        rows = r[r["optimizer"] == m]
        if rows.empty:
            nums[m] = "no fit"
            continue
        parts = []
        for _, row in rows.iterrows():
            s, lo, hi = float(row["slope"]), float(row["slope_ci_low"]), float(row["slope_ci_high"])
            if not np.isfinite(s):
                continue
            good = abs(s - ref) <= tol
            weak = lo <= ref + tol and hi >= ref - tol
            states.append("good" if good else "weak" if weak else "bad")
            cell = ", ".join(f"{c[2:]}={row[c]:g}" for c in rows.columns if c.startswith("p_") and r[c].nunique() > 1)
            parts.append(
                f"{s:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                + (f" ({cell})" if cell else "")
                + f" {'within' if good else 'CI meets band' if weak else 'outside'}"
            )
        nums[f"{m} (ref {ref:+.3f})"] = "; ".join(parts) or "no finite fit"
    text = (
        f"fitted exponent (median over seeds, {int(100 * LEVEL)}% bootstrap CI) within +-{tol} of the reference for "
        + ", ".join(f"{m}: {ref:+.3f}" for m, ref in methods.items())
    )
    return combine(states), text, nums


@register("rate_order")
def rate_order(
    data: Results, fast: str, slow: str, where: dict | None = None, table: str = "rates"
) -> tuple[str, str, dict]:
    """``fast``'s fitted exponent is more negative than ``slow``'s: good where the CIs are
    separated in that order, weak where only the medians are, bad otherwise."""
    try:
        r = select(data.table(table), where)
    except FileNotFoundError:
        return "not testable", f"the sweep wrote no {table}.csv", {}
    keys = [c for c in r.columns if c.startswith("p_")] or ["cell_id"]
    keys = ["cell_id"] if "cell_id" in r else keys
    a = r[r["optimizer"] == fast].set_index(keys)
    b = r[r["optimizer"] == slow].set_index(keys).reindex(a.index)
    states, parts = [], []
    for k in a.index:
        sa, sb = a.loc[k], b.loc[k]
        if not (np.isfinite(sa["slope"]) and np.isfinite(sb["slope"])):
            continue
        sep = sa["slope_ci_high"] < sb["slope_ci_low"]
        states.append("good" if sep else "weak" if sa["slope"] < sb["slope"] else "bad")
        lab = (
            ", ".join(f"{c[2:]}={sa[c]:g}" for c in r.columns if c.startswith("p_") and r[c].nunique() > 1)
            or f"cell {k}"
        )
        parts.append(
            f"{lab}: {fast} {sa['slope']:+.3f} [{sa['slope_ci_low']:+.3f}, {sa['slope_ci_high']:+.3f}] vs "
            f"{slow} {sb['slope']:+.3f} [{sb['slope_ci_low']:+.3f}, {sb['slope_ci_high']:+.3f}]"
        )
    return (
        combine(states),
        f"{fast}'s fitted exponent is below {slow}'s with separated CIs in every cell",
        {"exponents": "\n".join(parts)},
    )


def _value_at(curve_t: np.ndarray, curve_v: np.ndarray, t: float) -> float:
    """A curve's value at step t, interpolated linearly in log-log between logged steps."""
    ok = (curve_t > 0) & np.isfinite(curve_v) & (curve_v > 0)
    ct, cv = curve_t[ok], curve_v[ok]
    if ct.size == 0 or t < ct[0] or t > ct[-1]:
        return np.nan
    return float(10 ** np.interp(np.log10(t), np.log10(ct), np.log10(cv)))


@register("equal_oracle", pairwise=True)
def equal_oracle(
    data: Results, focus: str, rival: str, metric: str = "grad_nuc", where: dict | None = None
) -> tuple[str, str, dict]:
    """Compare the tuned runs (the sweep's criterion) of ``focus`` and ``rival`` at equal oracle
    calls: the budget C is the smaller of the two final call counts, and each run's ``metric``
    curve is read at step C / (its calls per step), log-log interpolated. Per cell: the median
    over seeds of log10(focus / rival) at equal calls, with its paired bootstrap CI; good where
    the CI lies below 0 (focus better), weak where the median does, bad otherwise. The same
    ratio at equal steps is reported next to it."""
    _, _, chosen = data.tuned()
    runs = data.table("runs").set_index("run_id")
    curves = data.table("curves").sort_values(["run_id", "step"])
    cells = select(data.table("runs").drop_duplicates("cell_id"), where)["cell_id"]
    ch = chosen[chosen["cell_id"].isin(cells) & chosen["optimizer"].isin([focus, rival])]
    if ch.empty:
        return "not testable", "no tuned runs of the two methods in the selected cells", {}
    cur = {
        rid: (g["step"].to_numpy(float), g[metric].to_numpy(float))
        for rid, g in curves[curves["run_id"].isin(ch["run_id"])].groupby("run_id")
    }
    states, parts = [], []
    for cell, g in ch.groupby("cell_id"):
        a, b = g[g.optimizer == focus].set_index("seed"), g[g.optimizer == rival].set_index("seed")
        seeds = sorted(set(a.index) & set(b.index))
        if not seeds:
            continue
        ra, rb = runs.loc[a.loc[seeds, "run_id"]], runs.loc[b.loc[seeds, "run_id"]]
        steps = float(data.config.get("steps") or curves["step"].max())
        cps_a = ra["oracle_calls"].to_numpy(float) / steps
        cps_b = rb["oracle_calls"].to_numpy(float) / steps
        budget = np.minimum(cps_a, cps_b) * steps
        va = np.array([_value_at(*cur[rid], c / k) for rid, c, k in zip(a.loc[seeds, "run_id"], budget, cps_a)])
        vb = np.array([_value_at(*cur[rid], c / k) for rid, c, k in zip(b.loc[seeds, "run_id"], budget, cps_b)])
        sa = np.array([_value_at(*cur[rid], steps) for rid in a.loc[seeds, "run_id"]])
        sb = np.array([_value_at(*cur[rid], steps) for rid in b.loc[seeds, "run_id"]])
        med = float(np.log10(np.median(va)) - np.log10(np.median(vb)))
        lo, hi = log10_ratio_ci([va], [vb], paired=True)
        med_s = float(np.log10(np.median(sa)) - np.log10(np.median(sb)))
        states.append("good" if hi[0] < 0 else "weak" if med < 0 else "bad")
        parts.append(
            f"{cell_label(data.table('runs'), cell) or f'cell {cell}'}: at {int(np.median(budget))} calls "
            f"log10({focus}/{rival}) = {med:+.3f} [{lo[0]:+.3f}, {hi[0]:+.3f}]"
            f"; at equal steps {med_s:+.3f} ({focus} makes {np.median(cps_a):g} calls/step, {rival} "
            f"{np.median(cps_b):g})"
        )
    text = (
        f"at equal oracle calls, {focus}'s tuned {metric} is below {rival}'s "
        "(paired bootstrap CI of the log ratio below 0)"
    )
    return combine(states), text, {"comparison": "\n".join(parts)}


@register("mode_exponent")
def mode_exponent(
    data: Results,
    optimizer: str,
    expected: float,
    tol: float,
    where: dict | None = None,
    modes: tuple[int, int] | None = None,
    min_steps: float = 2.0,
) -> tuple[str, str, dict]:
    """Phases of Muon's per-mode claim: fit rate_j ~ w_j^q across the logged modes (rate_j =
    1 / e-folding step of mode_err_j, analysis.theory.mode_decay_rates; w_j = entry j-1 of the
    problem's spectrum in spectra.csv named by its per-mode theory, e.g. power_law_lsq's ``cov``
    eigenvalues j^-alpha) for every seed of the tuned runs of ``optimizer`` in the selected cells
    (``modes`` = [j_lo, j_hi] restricts the fit to those modes); reproduced when the median
    exponent is within ``tol`` of ``expected``. Components that e-fold in fewer than ``min_steps``
    steps are dropped: a rate faster than the step cannot be resolved (log-interpolation inside
    the first step)."""
    curves = data.table("curves")
    cols = theory.mode_columns(curves)
    if not cols:
        return "not testable", "the sweep logged no mode_err_<j> curves (set log_modes)", {}
    th = theory.mode_theory(data.problem)
    if th is None:
        return "not testable", f"no per-mode theory for the problem {data.problem!r}", {}
    spec = theory.spectra_by_instance(data.spectra, th.spectrum)
    if not spec:
        return "not testable", f"spectra.csv holds no {th.spectrum!r} spectrum (the mode weights)", {}
    if modes is not None:
        cols = [(j, c) for j, c in cols if modes[0] <= j <= modes[1]]
    runs = select(tuned_runs(data), where)
    runs = runs[(runs["optimizer"] == optimizer) & (runs["status"] == "ok")]
    if runs.empty:
        return "not testable", f"no finished tuned run of {optimizer} matches the selection", {}
    slopes = []
    for _, r in runs.iterrows():
        lam = spec.get((r["cell_id"], r["seed"]))
        if lam is None:
            continue
        g = curves[curves["run_id"] == r["run_id"]].sort_values("step")
        rate = theory.mode_decay_rates(g, [c for _, c in cols])
        rate = np.where(rate <= 1.0 / min_steps, rate, np.nan)
        q, _, n = loglog_fit(theory.mode_weights(lam, [j for j, _ in cols]), rate)
        if n >= 3 and np.isfinite(q):
            slopes.append(q)
    span = f"modes {cols[0][0]}..{cols[-1][0]}" if cols else "no modes"
    text = (
        f"median over seeds of the fitted exponent q (rate_j ~ w_j^q, w = the {th.spectrum} spectrum, {span}, "
        f"components slower than {min_steps:g} steps) of {optimizer} within {tol} of {expected}"
    )
    if not slopes:
        return "not testable", text + ": no run had >= 3 modes that decayed by a factor e", {}
    med = float(np.median(slopes))
    nums = {
        "runs_fitted": len(slopes),
        "median_exponent": round(med, 3),
        "min": round(min(slopes), 3),
        "max": round(max(slopes), 3),
        "expected": expected,
    }
    return ("reproduced" if abs(med - expected) <= tol else "not reproduced"), text, nums
