"""From a result directory (runs.csv, curves.csv, spectra.csv, manifest.json) to the tuned
tables, the theory overlays and the figures: ``analyze(out_dir)`` writes summary.csv,
sensitivity.csv, phase.csv, profile.csv, rates.csv, rates_horizon.csv, modes.csv (when curves.csv
has per-mode errors), analysis.json and the figures, and returns the :class:`Analysis` the
page renderer (analysis/page.py) reads. Column meanings: docs/results.md; protocol:
docs/protocol.md."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import rates, theory, trend
from .floor import any_at_floor, describe, dtype_of, floors_of
from .gcpause import young_gc
from .options import CRITERIA, NEEDS_CURVES
from .phase import NONE, pairwise_verdicts, performance_profile, phase_table, rivals
from .results import Results
from .stats import log10_ratio, seed_note
from .tune import refine_edges, to_toml

log = logging.getLogger("analysis")
stage_log = logging.getLogger("analysis.stage")  # one line per stage (the CLI prints them on stderr)


def stage(name: str, t0: float) -> None:  # the start of a stage, seconds since the analysis' start t0
    stage_log.info(f"analysis: {name} ({time.perf_counter() - t0:.1f} s in)")


@dataclass
class Analysis:
    """What :func:`analyze` computed (and the renderer shows)."""

    data: Results
    crit: str
    focus: str
    level: float
    labels: list[str]
    kinds: dict[str, str]
    swept: list[str]
    x: str | None
    y: str | None
    extra: list[str]
    cells: pd.DataFrame
    summary: pd.DataFrame
    sens: pd.DataFrame
    chosen: pd.DataFrame
    phase: pd.DataFrame  # every horizon
    phase_map: pd.DataFrame  # the maps' rows (largest horizon when grouped on one)
    profile: pd.DataFrame
    rate_fits: pd.DataFrame
    rate_table: pd.DataFrame
    horizon_table: pd.DataFrame
    modes: pd.DataFrame
    shen: dict  # Shen et al.'s overlay: A per cell, the measured advantage, the trend tests (pipeline._shen)
    theory_rival: str | None
    curve_cells: list
    rate_metric: str
    top: tuple | None  # (horizon column, its largest value) when grouped on a horizon
    notes: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    paths: dict[str, Path] = field(default_factory=dict)
    refine: pd.DataFrame | None = None
    floors: pd.Series | None = None  # the stated floor per cell (analysis/floor.py)

    @property
    def out(self) -> Path:
        return self.data.dir

    @property
    def config(self) -> dict:
        return self.data.config

    @property
    def manifest(self) -> dict:
        return self.data.manifest

    @property
    def runs(self) -> pd.DataFrame:
        return self.data.runs

    def note(self, level: str, text: str) -> None:
        _note(self.notes, level, text)

    def at_top(self, df: pd.DataFrame) -> pd.DataFrame:
        """The rows at the largest horizon, when one is grouped on."""
        return df if self.top is None or self.top[0] not in df else df[df[self.top[0]] == self.top[1]]


def _note(notes: list, level: str, text: str) -> None:
    notes.append((level, text))
    (log.warning if level == "warning" else log.info)(f"analysis: {text}")


def _axes(data: Results) -> tuple[list[str], str | None, str | None]:
    swept = data.swept
    x = data.options.x or (swept[0] if swept else None)
    y = data.options.y or next((s for s in swept if s != x), None)
    return swept, x, y


def _focus(data: Results) -> str:
    if data.options.focus:
        return data.options.focus
    opts = data.config.get("optimizers") or []
    return next((o.get("label") or o["name"] for o in opts if o["name"] == "muon"), data.labels[0])


def _pick_cells(phase: pd.DataFrame, cells: pd.DataFrame, x: str | None, y: str | None, wanted: list | None) -> list:
    """Cells for the curves figure: the configured ones, else the corners of the (x, y) grid and
    the cells where the focus method does best and worst against its first rival (at most 6)."""
    if wanted:
        return [c for c in wanted if c in set(cells["cell_id"])][:6]
    pick = []
    if x is not None:
        c = cells
        xs = sorted(c[f"p_{x}"].unique())
        ys = sorted(c[f"p_{y}"].unique()) if y else [None]
        for xv in (xs[0], xs[-1]):
            for yv in (ys[0], ys[-1]):
                m = c[c[f"p_{x}"] == xv] if yv is None else c[(c[f"p_{x}"] == xv) & (c[f"p_{y}"] == yv)]
                if len(m):
                    pick.append(m["cell_id"].iloc[0])
    rv = rivals(phase)
    if rv:
        v = phase[f"log10_ratio_{rv[0]}"].astype(float).replace([np.inf, -np.inf], np.nan)
        if v.notna().any():
            pick += [phase.loc[v.idxmin(), "cell_id"], phase.loc[v.idxmax(), "cell_id"]]
    if not pick:
        pick = list(cells["cell_id"].iloc[:1])
    return list(dict.fromkeys(int(p) for p in pick))[:6]


def _tuned_medians(chosen: pd.DataFrame, runs: pd.DataFrame, column: str, optimizer: str) -> pd.Series:
    """Per cell_id: the median over seeds of the runs.csv ``column`` at ``optimizer``'s tuned
    points (diverged runs +inf)."""
    v = chosen[chosen["optimizer"] == optimizer].merge(runs[["run_id", column]], on="run_id")
    v = v[column].astype(float).where(v["status"] == "ok", np.inf).groupby(v["cell_id"]).median()
    return v


def _shen(
    data: Results,
    notes: list,
    labels: list[str],
    focus: str,
    crit: str,
    level: float,
    chosen: pd.DataFrame,
    phase_all: pd.DataFrame,
    phase: pd.DataFrame,
):
    """Shen et al.'s bound ratio per cell, A = r L / L_star with the bound's r (``theory_advantage``)
    and with the rank of the gradients seen (``A_seen``, :func:`analysis.trend.seen_rank_advantage`:
    curves.csv ``grad_rank``, max over the logged steps >= 1 and the runs of the cell), next to the
    measured advantage of the focus over the GD rival, and the two-sided trend test
    (:func:`analysis.trend.trend_test`, sign +1) of that advantage against log A. No winner is
    predicted. Returns (phase_all, phase, overlay dict for the page, rival)."""
    runs, kinds = data.runs, data.kinds
    adv = theory.shen_advantage(runs)
    gd_like = [lab for lab in labels if kinds.get(lab) in theory.SHEN_GD_KINDS and lab != focus]
    if adv.empty:
        _note(notes, "info", "theory (Shen et al.): the problem reports no L / L_star constants; no overlay")
        return phase_all, phase, {}, None
    if data.families.get(focus) not in theory.SHEN_FOCUS_FAMILIES:
        _note(
            notes,
            "info",
            f"theory (Shen et al.): the focus {focus!r} is not a {'/'.join(theory.SHEN_FOCUS_FAMILIES)} "
            "(Muon-type) method by runs.csv's optimizer_family; no overlay",
        )
        return phase_all, phase, {}, None
    if not gd_like:
        _note(notes, "info", "theory (Shen et al.): no GD optimizer in the sweep; no overlay")
        return phase_all, phase, {}, None
    rival = gd_like[0]
    adv = adv.assign(theory_rival=rival, theory_source=theory.SHEN)
    predictor = "theory_advantage"
    if data.has("curves") and trend.RANK_COLUMN in data.curves:
        seen = trend.seen_rank_advantage(runs, data.curves)
        adv = adv.merge(
            seen[["cell_id", "theory_rank", "theory_advantage"]].rename(
                columns={"theory_rank": "seen_rank", "theory_advantage": "A_seen"}
            ),
            on="cell_id",
            how="left",
        )
        predictor = "A_seen"
    else:
        _note(
            notes,
            "warning",
            f"theory (Shen et al.): curves.csv has no {trend.RANK_COLUMN} column (a sweep older than it, or "
            "no curves): A with the seen gradient rank is not computed; the trend test uses A with the bound's rank r, "
            "which gives A >= 1 in every cell",
        )
    phase_all = phase_all.merge(adv, on="cell_id", how="left")
    phase = phase.merge(adv, on="cell_id", how="left")
    measured = {crit: -phase[f"log10_ratio_{rival}"].astype(float).to_numpy()}
    if "final_grad_nuc" in runs:  # the theory's own quantity: nuclear norm of the gradient at the tuned points
        v = chosen.merge(runs[["run_id", "final_grad_nuc"]], on="run_id")
        v["value"] = v["final_grad_nuc"].where(v["status"] == "ok", np.inf)
        vn = pairwise_verdicts(v, focus, rival, level).rename(f"vs_{rival}_grad_nuc")
        phase_all = phase_all.merge(vn, left_on="cell_id", right_index=True, how="left")
        phase = phase.merge(vn, left_on="cell_id", right_index=True, how="left")
        f, r = (
            _tuned_medians(chosen, runs, "final_grad_nuc", o).reindex(phase["cell_id"]).to_numpy()
            for o in (focus, rival)
        )
        measured["final_grad_nuc"] = -log10_ratio(f, r)
    log_a = np.log10(phase[predictor].astype(float).to_numpy())
    tests = [{"quantity": q, "predictor": predictor, **trend.trend_test(log_a, y, sign=1)} for q, y in measured.items()]
    keep = [
        "cell_id",
        *[c for c in phase.columns if c.startswith("p_") and phase[c].nunique() > 1],
        *(["seen_rank"] if predictor == "A_seen" else []),
        "theory_rank",
        "theory_advantage",
        *(["A_seen"] if predictor == "A_seen" else []),
    ]
    table = phase[keep].copy()
    for q, y in measured.items():
        table[f"advantage_{q}"] = y
    table[f"vs_{rival}"] = phase[f"vs_{rival}"].to_numpy()
    overlay = {
        "focus": focus,
        "rival": rival,
        "source": theory.SHEN,
        "status": theory.SHEN_STATUS,
        "criterion": crit,
        "predictor": predictor,
        "rank_rtol": trend.RANK_RTOL,
        "tests": tests,
        "table": table,
        "A_min": float(np.nanmin(phase[predictor].astype(float))),
        "A_max": float(np.nanmax(phase[predictor].astype(float))),
    }
    return phase_all, phase, overlay, rival


def _rates(data: Results, notes: list, chosen: pd.DataFrame, kinds: dict, level: float, by: tuple):
    """(rate fits per run, rate table per cell, table against the horizon)."""
    a, runs = data.options, data.runs
    metric = a.rate_metric
    window = tuple(a.rate_window) if a.rate_window else None
    rate_fits, rate_tab = pd.DataFrame(), pd.DataFrame()
    if data.has("curves"):
        try:
            rate_fits = rates.fit_curves(data.curves, chosen, metric, window)
            rate_tab = rates.rate_table(rate_fits, kinds, level, keys=("cell_id", *by))
        except ValueError as e:
            _note(notes, "warning", f"rates: {e}")
    horizon_tab = pd.DataFrame()
    if a.rate_horizon:
        horizon = data.resolve_column(a.rate_horizon)
        if horizon is None:
            _note(notes, "warning", f"rates: rate_horizon {a.rate_horizon!r} is not a column of runs.csv")
        else:
            pcols = [c for c in runs.columns if c.startswith("p_")]
            fin = f"final_{metric}" if f"final_{metric}" in runs else "final_gap"
            t = chosen.merge(
                runs[["run_id", fin, *([horizon] if horizon not in chosen else []), *pcols]],
                on="run_id",
                suffixes=("", "_r"),
            )
            group = [c for c in pcols if c != horizon and runs[c].nunique() > 1]
            horizon_tab = rates.fit_vs_horizon(t, horizon, fin, keys=(*group, "optimizer"), level=level)
    return rate_fits, rate_tab, horizon_tab


def _modes(data: Results, notes: list, chosen: pd.DataFrame) -> pd.DataFrame:
    if not data.has("curves"):
        return pd.DataFrame()
    th = theory.mode_theory(data.problem)
    if not theory.mode_columns(data.curves):
        _note(notes, "info", "Phases-of-Muon per-mode overlay skipped: curves.csv has no mode_err_<j> columns")
        return pd.DataFrame()
    if th is None:
        _note(notes, "info", f"per-mode overlay skipped: no per-mode theory for the problem {data.problem!r}")
        return pd.DataFrame()
    if not (data.spectra["name"] == th.spectrum).any():
        _note(
            notes,
            "info",
            f"per-mode overlay skipped: spectra.csv holds no {th.spectrum!r} spectrum to give the mode weights",
        )
        return pd.DataFrame()
    modes = theory.mode_exponents(data.curves, chosen, data.runs, data.spectra, th)
    if modes.empty:
        _note(notes, "info", "per-mode overlay: no cell with a mode-weight range >= 10 (alpha too small)")
    return modes


def _warnings(an: Analysis) -> None:
    s, runs = an.summary, an.runs
    budget = s.groupby("optimizer")["n_grid"].agg(["min", "max"])
    if budget["min"].nunique() > 1 or budget["max"].nunique() > 1 or (budget["min"] != budget["max"]).any():
        an.note(
            "warning",
            "unequal tuning budgets (hyperparameter points per cell): "
            + ", ".join(
                f"{o}: {r['min']}" + (f"-{r['max']}" if r["max"] != r["min"] else "") for o, r in budget.iterrows()
            ),
        )
    edge = s[s["lr_at_edge"].astype(bool)]
    for o, g in edge.groupby("optimizer"):
        sides = g["lr_edge"].value_counts().to_dict()
        an.note(
            "warning",
            f"{o}: tuned lr at the edge of its grid in {len(g)}/{(s['optimizer'] == o).sum()} cells "
            f"({', '.join(f'{k}: {v}' for k, v in sides.items())}); widen the grid (muonlab report --refine-edges)",
        )
    div = runs.assign(_d=runs["status"] != "ok").groupby("optimizer")["_d"].mean()
    at = an.chosen.assign(_d=an.chosen["status"] != "ok").groupby("optimizer")["_d"].mean()
    for o in an.labels:
        if div.get(o, 0) > 0 or at.get(o, 0) > 0:
            an.note(
                "warning" if at.get(o, 0) > 0 else "info",
                f"{o}: {100 * div.get(o, 0):.1f}% of its runs diverged over the whole grid, {100 * at.get(o, 0):.1f}% "
                "at the tuned points",
            )
    ph = an.phase
    n_tie = int(ph["tie"].sum())
    if n_tie:
        an.note(
            "warning",
            f"{n_tie}/{len(ph)} cells are ties (winner's and runner-up's CIs overlap): no winner is claimed there",
        )
    failed = int((ph["winner"] == NONE).sum())
    if failed:
        an.note("warning", f"{failed} cells where every method failed (median criterion +inf)")
    exact = "p_noise" in runs and bool((runs["p_noise"] == "none").all())  # no oracle noise in any run
    seeds = seed_note(int(s["n_seeds"].min()) if len(s) else 0, exact, an.level)
    if seeds is not None:
        an.note(*seeds)
    if an.crit == "steps_to_target":
        miss = float(np.mean(~np.isfinite(s["median"].astype(float))))
        if miss > 0:
            an.note("info", f"{100 * miss:.0f}% of tuned (cell, method) pairs never reached the target (median +inf)")


def _json_safe(o):
    if isinstance(o, dict):
        return {str(k): _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return None if not np.isfinite(o) else float(o)
    return o


def _write_tables(an: Analysis) -> None:
    p, out = an.paths, an.out
    for name, df in (("summary", an.summary), ("sensitivity", an.sens), ("phase", an.phase), ("profile", an.profile)):
        p[name] = out / f"{name}.csv"
        df.to_csv(p[name], index=False)
    if not an.rate_table.empty:
        p["rates"] = out / "rates.csv"
        an.cells.merge(an.rate_table, on="cell_id").to_csv(p["rates"], index=False)
    if not an.horizon_table.empty:
        p["rates_horizon"] = out / "rates_horizon.csv"
        an.horizon_table.to_csv(p["rates_horizon"], index=False)
    if not an.modes.empty:
        p["modes"] = out / "modes.csv"
        an.modes.to_csv(p["modes"], index=False)


def _refine(an: Analysis) -> None:
    props, new_cfg = refine_edges(an.summary, an.config, an.data.grid_values("h_lr"))
    an.refine = props
    if props.empty:
        an.note("info", "--refine-edges: no tuned lr at a grid edge; nothing to widen")
        return
    path = an.paths["refine_edges"] = an.out / "refine_edges.toml"
    path.write_text(
        f"# Widened lr grids for the cells whose best lr sat at a grid edge ({an.out}).\n"
        f"# Run: muonlab run {path} --out {an.out}_refined\n" + to_toml(new_cfg)
    )
    an.note("info", f"--refine-edges: widened grids written to {path.name}; run it with muonlab run")


@young_gc()
def run(
    out_dir, criterion: str | None = None, focus: str | None = None, refine: bool = False, figures: bool = True
) -> Analysis:
    """The whole computation on ``out_dir`` (see :func:`analyze`); returns the :class:`Analysis`.
    Each stage (tuning, phase, theory, rates, tables, figures) logs a line to ``analysis.stage``; GC paused."""
    t0 = time.perf_counter()
    data = Results(out_dir, criterion=criterion, focus=focus)
    a = data.options
    crit, level, labels = a.criterion, float(a.level), data.labels
    focus = _focus(data)
    if focus not in labels:
        raise ValueError(f"focus: {focus!r} is not one of the optimizers; allowed: {', '.join(labels)}")
    if crit in NEEDS_CURVES and not data.has("curves"):
        raise ValueError(f"criterion {crit!r} needs curves.csv in {data.dir}")
    notes: list[tuple[str, str]] = []
    by = data.by
    stage(f"tuning ({crit}, {len(labels)} optimizers)", t0)
    summary, sens, chosen = data.tuned(crit)
    cells = data.cells
    stage(f"phase tables ({len(cells)} cells)", t0)
    floors = floors_of(data, crit)
    phase_all = phase_table(summary, cells, focus, chosen, level, by, floors)
    if any_at_floor(phase_all):
        _note(notes, "info", describe(crit, dtype_of(data)) + " (phase.csv at_floor)")
    top = None
    if by:  # maps and figures at the largest horizon
        top = (by[0], phase_all[by[0]].max())
        where = f"the largest {by[0]} = {top[1]:g}"
        _note(notes, "info", f"phase maps and profiles are drawn at {where}; phase.csv holds every horizon")
        phase = phase_all[phase_all[by[0]] == top[1]].reset_index(drop=True)
        summ_map = summary[summary[by[0]] == top[1]]
    else:
        phase, summ_map = phase_all, summary
    stage("theory overlays", t0)
    phase_all, phase, shen, rival = _shen(data, notes, labels, focus, crit, level, chosen, phase_all, phase)
    profile = performance_profile(summ_map, keys=("cell_id",), floors=floors)
    stage("rates", t0)
    rate_fits, rate_tab, horizon_tab = _rates(data, notes, chosen, data.kinds, level, by)
    modes = _modes(data, notes, chosen)
    swept, x, y = _axes(data)
    extra = [s for s in swept if s not in (x, y)]
    an = Analysis(
        data,
        crit,
        focus,
        level,
        labels,
        data.kinds,
        swept,
        x,
        y,
        extra,
        cells,
        summary,
        sens,
        chosen,
        phase_all,
        phase,
        profile,
        rate_fits,
        rate_tab,
        horizon_tab,
        modes,
        shen,
        rival,
        _pick_cells(phase, cells, x, y, a.cells),
        a.rate_metric,
        top,
        notes,
        floors=floors,
    )
    _warnings(an)
    stage("tables", t0)
    _write_tables(an)
    if refine:
        _refine(an)
    if figures:
        stage("figures", t0)
        from .figures import draw_standard  # noqa: PLC0415  (matplotlib only when figures are drawn)

        draw_standard(an)
    an.paths["analysis"] = an.out / "analysis.json"
    an.paths["analysis"].write_text(
        json.dumps(
            _json_safe(
                {
                    "criterion": crit,
                    "criterion_definition": CRITERIA[crit],
                    "focus": focus,
                    "level": level,
                    "theory_trend": shen.get("tests", []),
                    "winner_counts": phase["winner"].value_counts().to_dict(),
                    "n_ties": int(phase["tie"].sum()),
                    "n_cells": int(len(phase)),
                    "notes": [{"level": lv, "text": t} for lv, t in notes],
                }
            ),
            indent=1,
        )
    )
    stage_log.info(f"analysis: done in {time.perf_counter() - t0:.1f} s")
    return an


def analyze(
    out_dir: "str | Path", criterion: str | None = None, focus: str | None = None, refine_edges: bool = False
) -> dict[str, Path]:
    """Tune, build the phase table, fit rates, compute the theory overlays and draw the figures
    for the sweep in ``out_dir``. ``criterion`` / ``focus`` override the config's analysis
    section. Returns the written paths by name."""
    return run(out_dir, criterion, focus, refine_edges).paths
