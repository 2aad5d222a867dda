"""The bound rules (docs/protocol.md, "Bound rules"): ``bound_rate`` (one-sided: the tuned
quantity decays no slower than T^bound), ``bound_lower`` (one-sided the other way: a lower bound,
the quantity decays no faster than T^bound) and ``bound_tight`` (two-sided: its exponent is the
bound's, within a tolerance). Adapters from a sweep's tables to :mod:`analysis.bounds`; every
threshold is a parameter a claim preset states. Rules never draw: the figure is
:func:`analysis.bounds_figures.horizon_scan_figure` of the tables :func:`scan_tables` returns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import bounds as B
from ..stats import LEVEL, N_RESAMPLES
from . import register
from .common import select

MAX_CI_WIDTH = 0.5
MIN_SEEDS = 3


def _combine(statuses: list[str]) -> str:
    """Per-group statuses -> one: the common status when all testable groups agree, "partly"
    when they differ, "not testable" when none is testable."""
    st = [s for s in statuses if s != "not testable"]
    if not st:
        return "not testable"
    return st[0] if all(s == st[0] for s in st) else "partly"


def _fmt(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{v:+.3f}" if np.isfinite(v) else str(v)


def _round(x, nd: int = 4):
    x = float(x)
    return round(x, nd) if np.isfinite(x) else None


def scan_tables(
    data,
    optimizer,
    quantity: str = "avg_grad_fro",
    horizon: str = "logged",
    horizons=None,
    t_min=None,
    t_max=None,
    per_decade: int = B.PER_DECADE,
    window=None,
    exclude_edge: bool = True,
    min_horizons: int = B.MIN_HORIZONS,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    where: dict | None = None,
    windows=None,
):
    """(tuned, fits, by_window, by_lr) of :mod:`analysis.bounds` for the runs of ``optimizer``
    (a label or a list) in the cells selected by ``where``."""
    runs = data.table("runs")
    opts = [optimizer] if isinstance(optimizer, str) else list(optimizer)
    runs = select(runs[runs["optimizer"].isin(opts)], where)
    if runs.empty:
        return None
    curves = data.table("curves") if horizon == "logged" else None
    scan = B.horizon_scan(runs, curves, quantity, horizon, horizons, t_min, t_max, per_decade)
    kw = dict(level=level, n_resamples=n_resamples, seed=seed)
    tuned, fits = B.exponents(scan, window, exclude_edge, min_horizons=min_horizons, **kw)
    win = [(f"[{lo:g}, {hi:g}]", lo, hi) for lo, hi in windows] if windows else None
    by_window = B.window_exponents(scan, win, exclude_edge, **kw)
    by_lr = B.lr_neighbour_exponents(scan, window, **kw)
    return tuned, fits, by_window, by_lr


def _label(row, keys) -> str:
    return ", ".join(f"{k.removeprefix('p_')}={row[k]}" for k in keys)


def _keys(fits: pd.DataFrame) -> list[str]:
    return [c for c in fits.columns if c in ("cell_id", "optimizer") or c.startswith("p_")]


def _tables(tuned, fits, by_window, by_lr, keys) -> dict:
    hcols = [c for c in tuned.columns if c.startswith("h_") and tuned[c].nunique() > 1] or [
        c for c in ("h_lr",) if c in tuned
    ]
    h = tuned[[*keys, "T", *hcols, "median", "ci_low", "ci_high", "lr_edge", "in_fit"]]
    f = lambda v: f"{v:.4g}"  # noqa: E731
    out = {"horizons": h.to_string(index=False, float_format=f)}
    if not by_window.empty:
        out["by_window"] = by_window.to_string(index=False, float_format=f)
    if not by_lr.empty:
        out["by_lr"] = by_lr.to_string(index=False, float_format=f)
    return out


def _run(data, optimizer, bound, tol, judge, params: dict):
    min_seeds = params.pop("min_seeds")
    res = scan_tables(data, optimizer, **params)
    if res is None:
        return None
    tuned, fits, by_window, by_lr = res
    keys = _keys(fits)
    rows, statuses = [], []
    for _, r in fits.iterrows():
        status, note = judge(r, min_seeds, params["min_horizons"])
        statuses.append(status)
        rows.append(
            f"{_label(r, keys)}: exponent {_fmt(r['slope'])} [{_fmt(r['slope_ci_low'])}, {_fmt(r['slope_ci_high'])}] "
            f"over {int(r['n_horizons'])} horizons ({r['fit_lo']:g}..{r['fit_hi']:g}), {int(r['n_edge'])} at the lr "
            "edge, "
            f"{int(r['n_seeds'])} seeds: {note} -> {status}"
        )
    nums = {
        "bound": bound,
        "tol": tol,
        "quantity": params["quantity"],
        "level": params["level"],
        "n_resamples": params["n_resamples"],
        "per_group": "\n".join(rows),
        **_tables(tuned, fits, by_window, by_lr, keys),
    }
    if len(fits) == 1:
        r = fits.iloc[0]
        nums.update(
            exponent=_round(r["slope"]),
            exponent_ci_low=_round(r["slope_ci_low"]),
            exponent_ci_high=_round(r["slope_ci_high"]),
            n_horizons=int(r["n_horizons"]),
            n_edge=int(r["n_edge"]),
        )
    return _combine(statuses), nums, fits


def _common_reason(r, min_seeds, min_horizons) -> str | None:
    if r["n_seeds"] < min_seeds:
        return f"{int(r['n_seeds'])} seeds < {min_seeds}"
    if r["n_horizons"] < min_horizons:
        if r["n_edge"] and r["n_window"] - r["n_edge"] < min_horizons:
            return (
                f"tuned lr at the grid edge at {int(r['n_edge'])} of {int(r['n_window'])} horizons (widen the lr grid)"
            )
        return f"{int(r['n_horizons'])} usable horizons < {min_horizons}"
    return None


_SCAN_DOC = """
    Common parameters (defaults): ``optimizer`` (label or list); ``quantity`` ("avg_grad_fro": a
    curves.csv accumulator column for ``horizon = "logged"``, a runs.csv column or ``final_``
    name for a horizon column); ``horizon`` ("logged", or a runs.csv column such as h_horizon);
    ``horizons`` (None: the logged steps in [``t_min``, ``t_max``] = [T_max / 100, T_max] thinned
    to ``per_decade`` = 4 per decade); ``window`` (None: all horizons); ``exclude_edge`` (True:
    horizons whose tuned lr is at an end of the lr grid are left out of the fit);
    ``min_horizons`` (4); ``min_seeds`` (3); ``level`` (0.95); ``n_resamples`` (999); ``seed``
    (0, the bootstrap RNG); ``where`` (cell selection); ``windows`` (robustness sub-windows,
    list of [lo, hi]; None: :func:`analysis.bounds.default_windows`). The exponent is the slope
    of log Q_tuned vs log T, Q tuned separately at every horizon; its CI resamples the seeds,
    re-tunes at every T and refits (:func:`analysis.bounds.exponents`)."""


SCAN_PARAMS = (
    "quantity",
    "horizon",
    "horizons",
    "t_min",
    "t_max",
    "per_decade",
    "window",
    "exclude_edge",
    "min_horizons",
    "level",
    "n_resamples",
    "seed",
    "where",
    "windows",
    "min_seeds",
)


def _scan_params(args: dict) -> dict:
    """The horizon-scan parameters of a bound rule's arguments (the part its rules share)."""
    return {k: args[k] for k in SCAN_PARAMS}


def _one_sided_judge(bound: float, tol: float, max_ci_width: float, lower: bool):
    """The per-group judgement of a one-sided bound test on the exponent's CI: an upper bound
    fails when the decay is slower than T^(bound + tol), a lower bound when it is faster than
    T^(bound - tol); the other side is consistent (the bound is not tight there); a CI that meets
    the band counts only when it is at most ``max_ci_width`` wide."""
    fail, loose = (B.FASTER, B.SLOWER) if lower else (B.SLOWER, B.FASTER)
    what = "the lower bound" if lower else "the bound"

    def judge(r, ms, mh):
        why = _common_reason(r, ms, mh)
        if why:
            return "not testable", why
        v = B.bound_verdict(r["slope_ci_low"], r["slope_ci_high"], bound, tol)
        if v == fail:
            side = f"below {bound:+.3f} - {tol}" if lower else f"above {bound:+.3f} + {tol}"
            return "not reproduced", f"{v.split()[0]} than {what} (CI {side})"
        if v == loose:
            return "reproduced", f"{v.split()[0]} than {what}: consistent ({what} is not tight here)"
        if v == B.CONSISTENT:
            width = r["slope_ci_high"] - r["slope_ci_low"]
            if width > max_ci_width:
                return "not testable", f"consistent but the CI is {width:.2f} wide (> {max_ci_width})"
            return "reproduced", f"consistent with {what}"
        return "not testable", "no finite CI"

    return judge


@register("bound_rate", figure="horizon_scan")
def bound_rate(
    data,
    optimizer,
    bound: float,
    quantity: str = "avg_grad_fro",
    tol: float = B.TOL,
    max_ci_width: float = MAX_CI_WIDTH,
    min_seeds: int = MIN_SEEDS,
    horizon: str = "logged",
    horizons=None,
    t_min=None,
    t_max=None,
    per_decade: int = B.PER_DECADE,
    window=None,
    exclude_edge: bool = True,
    min_horizons: int = B.MIN_HORIZONS,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    where: dict | None = None,
    windows=None,
) -> tuple[str, str, dict]:
    """An upper bound Q(T) = O(T^bound) (bound < 0), tested one-sided on the exponent's CI
    [lo, hi] (:func:`analysis.bounds.bound_verdict`): "slower than the bound" (lo > bound + tol)
    -> not reproduced; "faster than the bound" (hi < bound - tol: consistent, the bound is not
    tight here) -> reproduced; "consistent" (the CI meets [bound - tol, bound + tol]) ->
    reproduced if the CI is at most ``max_ci_width`` (0.5) wide, else not testable (the data
    cannot tell); too few seeds or horizons, edge-only optima, no finite CI -> not testable.
    ``tol`` default 0.05. Several cells / optimizers: the common status, else partly."""

    judge = _one_sided_judge(bound, tol, max_ci_width, lower=False)

    params = _scan_params(locals())
    text = (
        f"{quantity} of the tuned {optimizer} (tuned separately at each horizon T) decays no slower than "
        f"T^{bound:+.3f}: "
        f"the {level:.0%} bootstrap CI over seeds of the exponent of log Q vs log T reaches {bound:+.3f} + {tol} or "
        "below "
        f"(one-sided; faster decay is consistent with an upper bound)"
    )
    out = _run(data, optimizer, bound, tol, judge, params)
    if out is None:
        return "not testable", text + ": no run of the selected optimizer and cells", {}
    status, nums, _ = out
    return status, text, nums


@register("bound_tight", figure="horizon_scan")
def bound_tight(
    data,
    optimizer,
    bound: float,
    quantity: str = "avg_grad_fro",
    tol: float = B.TOL,
    min_seeds: int = MIN_SEEDS,
    horizon: str = "logged",
    horizons=None,
    t_min=None,
    t_max=None,
    per_decade: int = B.PER_DECADE,
    window=None,
    exclude_edge: bool = True,
    min_horizons: int = B.MIN_HORIZONS,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    where: dict | None = None,
    windows=None,
) -> tuple[str, str, dict]:
    """The bound is attained on this instance: the exponent's CI lies within [bound - tol,
    bound + tol] -> reproduced; entirely outside it -> not reproduced; straddling an end of it ->
    partly (:func:`analysis.bounds.tight_verdict`); too few seeds or horizons, edge-only optima
    -> not testable. Separate from ``bound_rate``, never implied by it. ``tol`` default 0.05."""

    def judge(r, ms, mh):
        why = _common_reason(r, ms, mh)
        if why:
            return "not testable", why
        v = B.tight_verdict(r["slope_ci_low"], r["slope_ci_high"], bound, tol)
        return {
            B.TIGHT: ("reproduced", "tight"),
            B.NOT_TIGHT: ("not reproduced", f"CI outside {bound:+.3f} +- {tol}"),
            B.UNDECIDED: ("partly", f"CI straddles an end of {bound:+.3f} +- {tol}"),
        }.get(v, ("not testable", "no finite CI"))

    params = _scan_params(locals())
    text = (
        f"the exponent of the tuned-per-horizon {quantity} of {optimizer} equals the bound's {bound:+.3f}: its "
        f"{level:.0%} "
        f"bootstrap CI over seeds lies within +-{tol}"
    )
    out = _run(data, optimizer, bound, tol, judge, params)
    if out is None:
        return "not testable", text + ": no run of the selected optimizer and cells", {}
    status, nums, _ = out
    return status, text, nums


@register("bound_lower", figure="horizon_scan")
def bound_lower(
    data,
    optimizer,
    bound: float,
    quantity: str = "gap",
    tol: float = B.TOL,
    max_ci_width: float = MAX_CI_WIDTH,
    min_seeds: int = MIN_SEEDS,
    horizon: str = "logged",
    horizons=None,
    t_min=None,
    t_max=None,
    per_decade: int = B.PER_DECADE,
    window=None,
    exclude_edge: bool = True,
    min_horizons: int = B.MIN_HORIZONS,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    where: dict | None = None,
    windows=None,
) -> tuple[str, str, dict]:
    """A lower bound Q(T) = Omega(T^bound) on the tuned method, tested one-sided on the exponent's
    CI [lo, hi] (the mirror of ``bound_rate``, same :func:`analysis.bounds.bound_verdict`):
    "faster than the bound" (hi < bound - tol: even tuned per horizon the method beats the lower
    bound) -> not reproduced; "slower than the bound" (lo > bound + tol: consistent, the lower
    bound is not tight here) -> reproduced; "consistent" -> reproduced if the CI is at most
    ``max_ci_width`` wide, else not testable; too few seeds or horizons, edge-only optima -> not
    testable. A finite instance reaches only finite horizons: a lower bound stated for T -> inf
    (or for an infinite spectrum) can be met early and broken late, so the horizon range is part of
    the verdict. ``quantity`` default "gap"; ``tol`` default 0.05."""

    judge = _one_sided_judge(bound, tol, max_ci_width, lower=True)

    params = _scan_params(locals())
    text = (
        f"{quantity} of the tuned {optimizer} (tuned separately at each horizon T) decays no faster than "
        f"T^{bound:+.3f}: "
        f"the {level:.0%} bootstrap CI over seeds of the exponent of log Q vs log T reaches {bound:+.3f} - {tol} or "
        "above "
        f"(one-sided; slower decay is consistent with a lower bound)"
    )
    out = _run(data, optimizer, bound, tol, judge, params)
    if out is None:
        return "not testable", text + ": no run of the selected optimizer and cells", {}
    status, nums, _ = out
    return status, text, nums


bound_rate.__doc__ += _SCAN_DOC
bound_lower.__doc__ += _SCAN_DOC
bound_tight.__doc__ += _SCAN_DOC
