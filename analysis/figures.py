"""Which figures are drawn, and from what.

- :func:`draw_standard`: the figures of every analysis (phase_winner, phase_ratio_<rival>,
  lr_sensitivity, performance_profile, curves_selected, phase_modes, and rates where a rate is
  asked for or a rate claim applies: :func:`wants_rates`), drawn by the pipeline from what it
  computed (:class:`analysis.pipeline.Analysis`).
- :data:`FIGURES`: named figures a claim preset asks for through a rule's ``figure`` parameter,
  each ``fn(data: Results, path, **params) -> Path``, a function of the result directory and the
  rule's parameters (a rule declares which one draws it: ``@register(name, figure=...)`` in
  analysis/rules/). :func:`draw_for_rule` calls one.

Drawing lives in analysis/heatmaps.py (maps over the swept axes) and analysis/lines.py (line
figures); shared style in analysis/figstyle.py."""

from __future__ import annotations

import gc
import inspect
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from . import forked, heatmaps, lines, theory
from .envelope import envelope, floor_of
from .floor import QUANTITY, any_at_floor, describe, dtype_of
from .registry import Registry
from .results import Results
from .rules.common import advantage_against, cell_label, select

FIGURES = Registry("figure")


@FIGURES.register("envelopes")
def envelopes(
    data: Results,
    path: Path,
    methods: list,
    metric: str = "gap",
    running_min: bool = True,
    where: dict | None = None,
    floor: str = "eps_floor",
) -> Path:
    """One panel per selected cell: each method's envelope (best over its grid by step t,
    :func:`analysis.envelope.envelope`), with the floor ``c_<floor>`` of runs.csv where the metric
    is the gap and the problem reports it."""
    runs = data.runs
    cells = sorted(select(runs, where).cell_id.unique())
    fl = floor_of(data, floor) if metric == "gap" else pd.Series(dtype=float)
    labels = [m for m in dict.fromkeys(runs.optimizer) if m in methods] or list(methods)
    panels = [
        (
            cell_label(runs, cell),
            {m: envelope(data, m, cell, metric, running_min) for m in labels},
            float(fl[cell]) if cell in fl.index else None,
        )
        for cell in cells
    ]
    ylabel = f"best {'so-far ' if running_min else ''}{metric} over the grid (median of seeds)"
    return lines.envelope_figure(panels, labels, path, ylabel)


@FIGURES.register("advantage")
def advantage(
    data: Results,
    path: Path,
    focus: str,
    rival: str,
    against: str,
    metric: str = "best_grad_nuc",
    within: "str | list | None" = None,
    where: dict | None = None,
) -> Path | None:
    """The measured advantage log10(rival / focus) of the tuned ``metric`` per cell against the
    claim's variable (a problem parameter, or log10 of Shen et al.'s A from phase.csv)."""
    adv, xname, why = advantage_against(data, focus, rival, against, metric, where)
    if why:
        return None
    x = adv["x"].astype(float)
    logx = against != "theory_advantage" and bool((x > 0).all()) and x.max() >= 10 * x.min()
    hue = [within] if isinstance(within, str) else list(within or [])
    return lines.advantage_figure(adv, "x", xname, focus, rival, metric, path, hue=hue, logx=logx)


@FIGURES.register("horizon_scan")
def horizon_scan(
    data: Results,
    path: Path,
    optimizer,
    bound=None,
    quantity: str = "avg_grad_fro",
    horizon: str = "logged",
    horizons=None,
    t_min=None,
    t_max=None,
    per_decade: int | None = None,
    window=None,
    exclude_edge: bool = True,
    where: dict | None = None,
) -> Path | None:
    """Tuned-per-horizon quantity against the horizon T with the fitted exponent and the bound's
    slope (:func:`analysis.bounds_figures.horizon_scan_figure`), for the bound rules."""
    from .bounds import PER_DECADE  # noqa: PLC0415
    from .bounds_figures import horizon_scan_figure  # noqa: PLC0415
    from .rules.bounds import scan_tables  # noqa: PLC0415

    tabs = scan_tables(
        data,
        optimizer,
        quantity,
        horizon,
        horizons,
        t_min,
        t_max,
        per_decade or PER_DECADE,
        window,
        exclude_edge,
        where=where,
        n_resamples=199,
    )
    if tabs is None:
        return None
    return horizon_scan_figure(tabs[0], tabs[1], path, bound=bound)


def draw_for_rule(figure: str | None, data: Results, spec: "str | dict", params: dict) -> Path | None:
    """Draw the named figure a rule declares for its ``figure`` parameter ``spec`` (a file name,
    or a table with ``name`` and parameters that override the rule's), with the rule's
    parameters that the figure takes."""
    if figure is None:
        raise ValueError("figure: this rule draws no figure; allowed: a rule that declares one")
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    fn = FIGURES.get(figure)
    takes = set(inspect.signature(fn).parameters) - {"data", "path"}
    kw = {k: v for k, v in {**params, **spec}.items() if k in takes}
    return fn(data, data.dir / spec["name"], **kw)


# --- the figures of every analysis --------------------------------------------------------------
# lr schedules whose vs-step rate is a theorem's T-rate (runners/schedules.py: ``power`` is the
# horizon-free eta t^-p of the MVR theory; a constant lr is tuned for one horizon and cosine /
# linear need it), so the only ones a reference slope is drawn for on rates.png
HORIZON_FREE = ("power",)


def rate_references(an) -> pd.DataFrame:
    """The rate table with ``reference_slope`` kept only where it belongs: the theory states a rate
    for that optimizer kind and metric (analysis.theory.RATE_METHODS / reference_slope) and the
    tuned runs of that cell and optimizer use a horizon-free schedule (:data:`HORIZON_FREE`; runs.csv
    ``h_lr_schedule``, constant when absent); NaN elsewhere."""
    t = an.at_top(an.rate_table)
    if t.empty or "reference_slope" not in t:
        return t
    runs = an.runs
    sched = runs["h_lr_schedule"] if "h_lr_schedule" in runs else pd.Series("constant", index=runs.index)
    ch = an.chosen.merge(runs[["run_id"]].assign(_s=sched.to_numpy()), on="run_id")
    free = ch.assign(_f=ch["_s"].isin(HORIZON_FREE)).groupby(["cell_id", "optimizer"])["_f"].all()
    ok = [bool(free.get((c, o), False)) for c, o in zip(t["cell_id"], t["optimizer"])]
    return t.assign(reference_slope=t["reference_slope"].where(ok))


def wants_rates(an, refs: pd.DataFrame) -> bool:
    """Whether the analysis draws rates.png: the sweep asks for a rate (its analysis section sets
    ``rate_metric``, ``rate_window`` or ``rate_horizon``), or a rate claim applies to one of its
    optimizers (a reference slope kept by :func:`rate_references`). The fits of rates.csv are
    written either way."""
    asked = {"rate_metric", "rate_window", "rate_horizon"} & set(an.config.get("analysis") or {})
    has_ref = "reference_slope" in refs and bool(np.isfinite(refs["reference_slope"].astype(float)).any())
    return bool(asked) or has_ref


def draw_standard(an) -> None:
    """The standard figures of an :class:`analysis.pipeline.Analysis`, into its directory; their
    paths go to ``an.paths`` by file stem. Criterion values are drawn at the cell's stated floor
    (analysis/floor.py) where they fall below it; rates.png only where :func:`wants_rates`. The
    lr-sensitivity grid (the most panels) is drawn beside the others (:func:`analysis.forked.start`)."""
    p, at = an.paths, an.at_top
    fl = describe(an.crit, dtype_of(an.data)) if an.floors is not None else ""
    fl_maps = fl if any_at_floor(an.phase_map) else ""  # stated where used

    def keep(q):
        gc.collect(0)  # the figures just drawn are unreachable: a young pass frees them (gcpause.young_gc)
        if q:
            p[q.stem] = q
            logging.getLogger("analysis.stage").info(f"analysis: figure {q.name}")  # a line per figure drawn

    sensitivity = forked.start(
        lambda: heatmaps.sensitivity_grid(
            at(an.sens),
            at(an.summary),
            an.cells,
            an.x,
            an.y,
            an.labels,
            an.out / "lr_sensitivity.png",
            an.crit,
            an.extra,
            an.floors,
            fl_maps,
        )
    )
    try:
        _draw_others(an, keep, fl, fl_maps)
    except BaseException:
        try:
            sensitivity()  # reaps the process; the first error is the one raised
        except BaseException:  # noqa: BLE001, S110
            pass
        raise
    for q in sensitivity():
        keep(q)


def _draw_others(an, keep, fl: str, fl_maps: str) -> None:
    """The standard figures but the lr-sensitivity grid (:func:`draw_standard`)."""
    out, at = an.out, an.at_top
    phase = an.phase_map
    if an.x is not None:
        title = f"winner by {an.crit} (tuned lr, median over seeds, {100 * an.level:.0f}% bootstrap CIs)"
        for q in heatmaps.winner_map(phase, an.x, an.y, an.labels, out / "phase_winner.png", title, an.extra):
            keep(q)
        for q in heatmaps.ratio_maps(
            phase, an.x, an.y, an.focus, out / "phase_ratio.png", an.crit, an.extra, an.labels, floor_text=fl_maps
        ):
            keep(q)
    keep(lines.profile_figure(an.profile, an.labels, out / "performance_profile.png", an.crit, fl_maps))
    if not an.data.has("curves"):
        return
    curves = an.data.curves
    gap_floor = QUANTITY.get(an.crit) == "gap"  # the floor is in the curves' units
    keep(
        lines.curves_figure(
            curves,
            at(an.chosen),
            an.cells,
            an.curve_cells,
            an.swept,
            an.labels,
            path=out / "curves_selected.png",
            floors=an.floors if gap_floor else None,
            floor_text=fl if gap_floor else "",
        )
    )
    refs = rate_references(an)
    if not an.rate_table.empty and wants_rates(an, refs):
        keep(
            lines.rates_figure(
                curves,
                at(an.rate_fits),
                refs,
                an.cells,
                an.curve_cells[0],
                an.swept,
                an.labels,
                out / "rates.png",
                an.rate_metric,
            )
        )
    if not an.modes.empty:
        th = theory.mode_theory(an.data.problem)
        m = an.modes.merge(an.cells, on="cell_id")
        order = [c for c in ("p_alpha",) if c in m]  # the steepest spectrum first, where the problem has one
        cid = m.sort_values([*order, "cell_id"], ascending=[False] * len(order) + [True])["cell_id"].iloc[0]
        modes = [j for j, _ in theory.mode_columns(curves)]
        weights = theory.mode_weights(an.data.spectrum(th.spectrum, cid), modes)
        if np.isfinite(weights).all():
            keep(
                lines.modes_figure(
                    curves, at(an.chosen), weights, th, an.cells, cid, an.swept, an.labels, out / "phase_modes.png"
                )
            )
