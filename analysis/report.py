"""From a sweep directory (runs.csv, curves.csv, manifest.json) to the tuned tables, the figures
and the report.

``analyze(out_dir)`` writes summary.csv, sensitivity.csv, phase.csv, profile.csv, rates.csv,
modes.csv (when curves.csv has per-mode errors), analysis.json and the figures;
``report(out_dir)`` does the same and writes report.md and a self-contained report.html.
Column meanings: docs/results.md; protocol: docs/protocol.md.
"""
from __future__ import annotations

import base64
import html
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import plots, rates, theory
from .phase import NONE, pairwise_verdicts, performance_profile, phase_table, rivals
from .tune import CRITERIA, NEEDS_CURVES, criterion, refine_edges, select, to_toml

log = logging.getLogger("analysis")
GD_KINDS = ("gd", "sgd")


@dataclass
class Result:
    out: Path
    config: dict
    manifest: dict
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
    runs: pd.DataFrame
    summary: pd.DataFrame
    sens: pd.DataFrame
    chosen: pd.DataFrame
    phase: pd.DataFrame
    profile: pd.DataFrame
    rate_table: pd.DataFrame
    horizon_table: pd.DataFrame
    modes: pd.DataFrame
    agreement: dict
    theory_rival: str | None
    curve_cells: list
    notes: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    paths: dict[str, Path] = field(default_factory=dict)
    refine: pd.DataFrame | None = None


def _axes(config: dict) -> tuple[list[str], str | None, str | None]:
    swept = list(config["problem"].get("grid", {}))
    a = config.get("analysis", {}) or {}
    x = a.get("x") or (swept[0] if swept else None)
    y = a.get("y") or next((s for s in swept if s != x), None)
    return swept, x, y


def _focus(config: dict) -> str:
    a = config.get("analysis", {}) or {}
    if a.get("focus"):
        return a["focus"]
    opts = config["optimizers"]
    return next((o.get("label") or o["name"] for o in opts if o["name"] == "muon"), opts[0].get("label") or opts[0]["name"])


def _note(res_notes: list, level: str, text: str) -> None:
    res_notes.append((level, text))
    (log.warning if level == "warning" else log.info)(f"analysis: {text}")


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


def _resolve_column(runs: pd.DataFrame, name: str | None) -> str | None:
    if not name:
        return None
    for c in (name, f"p_{name}", f"h_{name}"):
        if c in runs:
            return c
    return None


def _run(out_dir, crit: str | None = None, focus: str | None = None, refine: bool = False, figures: bool = True) -> Result:
    out = Path(out_dir)
    manifest = json.loads((out / "manifest.json").read_text())
    config = manifest["config"]
    a = config.get("analysis") or {}
    crit = crit or a.get("criterion", "final_gap")
    if crit not in CRITERIA:
        raise ValueError(f"criterion: unknown {crit!r}; allowed: {', '.join(CRITERIA)}")
    level = float(a.get("level") or 0.95)
    labels = [o.get("label") or o["name"] for o in config["optimizers"]]
    kinds = {o.get("label") or o["name"]: o["name"] for o in config["optimizers"]}
    focus = focus or _focus(config)
    if focus not in labels:
        raise ValueError(f"focus: {focus!r} is not one of the optimizers; allowed: {', '.join(labels)}")
    notes: list[tuple[str, str]] = []
    runs = pd.read_csv(out / "runs.csv")
    curves_path = out / "curves.csv"
    curves = pd.read_csv(curves_path) if curves_path.exists() else None
    if crit in NEEDS_CURVES and curves is None:
        raise ValueError(f"criterion {crit!r} needs curves.csv in {out}")

    horizon = _resolve_column(runs, a.get("rate_horizon"))
    by = (horizon,) if horizon and horizon.startswith("h_") else ()
    scores = criterion(runs, crit, curves)
    summary, sens, chosen = select(runs, scores, level, by)
    pcols = [c for c in runs.columns if c.startswith("p_")]
    cells = runs[["cell_id", *pcols]].drop_duplicates("cell_id").sort_values("cell_id").reset_index(drop=True)
    summary = cells.merge(summary, on="cell_id")
    sens = cells.merge(sens, on="cell_id")
    phase_all = phase_table(summary, cells, focus, chosen, level, by)
    top = None
    if by:  # maps and figures at the largest horizon
        top = phase_all[horizon].max()
        _note(notes, "info", f"phase maps and profiles are drawn at the largest {horizon} = {top:g}; phase.csv holds every horizon")
        phase = phase_all[phase_all[horizon] == top].reset_index(drop=True)
        summ_map = summary[summary[horizon] == top]
    else:
        phase, summ_map = phase_all, summary

    # --- theory: Shen et al. predicted winner and agreement ----------------------------------------
    agreement: dict = {}
    theory_rival = None
    adv = theory.shen_advantage(runs)
    gd_like = [lab for lab in labels if kinds[lab] in GD_KINDS and lab != focus]
    if adv.empty:
        _note(notes, "info", "theory (Shen et al.): the problem reports no L / L_star constants; no prediction")
    elif "muon" not in kinds[focus].lower():
        _note(notes, "info", f"theory (Shen et al.): the focus {focus!r} is not a Muon method; no prediction")
    elif not gd_like:
        _note(notes, "info", "theory (Shen et al.): no GD optimizer in the sweep; no prediction")
    else:
        theory_rival = gd_like[0]
        thr = float(a.get("theory_threshold") or 1.0)
        adv = adv.assign(predicted_winner=theory.predict_winner(adv, focus, theory_rival, thr).to_numpy(),
                         theory_rival=theory_rival, theory_source=theory.SHEN)
        phase_all = phase_all.merge(adv, on="cell_id", how="left")
        phase = phase.merge(adv, on="cell_id", how="left")
        measured = phase[f"vs_{theory_rival}"]
        agreement = theory.agreement(phase["predicted_winner"], measured)
        lr = phase[f"log10_ratio_{theory_rival}"].astype(float)
        la = np.log10(phase["theory_advantage"].astype(float))
        ok = np.isfinite(lr) & np.isfinite(la)
        if ok.sum() >= 3 and la[ok].nunique() > 1 and lr[ok].nunique() > 1:
            rho, pval = stats.spearmanr(la[ok], -lr[ok])
            agreement.update(spearman=float(rho), spearman_p=float(pval))
        else:
            agreement.update(spearman=np.nan, spearman_p=np.nan)
        if "final_grad_nuc" in runs:  # the theory's own quantity: nuclear norm of the gradient at the tuned points
            v = chosen.merge(runs[["run_id", "final_grad_nuc"]], on="run_id")
            v["value"] = v["final_grad_nuc"].where(v["status"] == "ok", np.inf)
            vn = pairwise_verdicts(v, focus, theory_rival, level).rename(f"vs_{theory_rival}_grad_nuc")
            phase_all = phase_all.merge(vn, left_on="cell_id", right_index=True, how="left")
            phase = phase.merge(vn, left_on="cell_id", right_index=True, how="left")
            agreement["grad_nuc"] = theory.agreement(phase["predicted_winner"], phase[vn.name])
        agreement.update(threshold=thr, focus=focus, rival=theory_rival, source=theory.SHEN, status=theory.SHEN_STATUS,
                         criterion=crit, advantage_min=float(adv["theory_advantage"].min()),
                         advantage_max=float(adv["theory_advantage"].max()))

    profile = performance_profile(summ_map, keys=("cell_id",))

    # --- rates ---------------------------------------------------------------------------------------
    metric = a.get("rate_metric") or "gap"
    window = tuple(a["rate_window"]) if a.get("rate_window") else None
    rate_fits, rate_tab = pd.DataFrame(), pd.DataFrame()
    if curves is not None:
        try:
            rate_fits = rates.fit_curves(curves, chosen, metric, window)
            rate_tab = rates.rate_table(rate_fits, kinds, level, keys=("cell_id", *by))
        except ValueError as e:
            _note(notes, "warning", f"rates: {e}")
    horizon_tab = pd.DataFrame()
    if a.get("rate_horizon"):
        if horizon is None:
            _note(notes, "warning", f"rates: rate_horizon {a['rate_horizon']!r} is not a column of runs.csv")
        else:
            fin = f"final_{metric}" if f"final_{metric}" in runs else "final_gap"
            t = chosen.merge(runs[["run_id", fin, *([horizon] if horizon not in chosen else []), *pcols]], on="run_id", suffixes=("", "_r"))
            group = [c for c in pcols if c != horizon and runs[c].nunique() > 1]
            horizon_tab = rates.fit_vs_horizon(t, horizon, fin, keys=(*group, "optimizer"), level=level)

    # --- theory: Phases of Muon per mode -------------------------------------------------------------
    modes = pd.DataFrame()
    if curves is not None:
        if not theory.mode_columns(curves):
            _note(notes, "info", "Phases-of-Muon per-mode overlay skipped: curves.csv has no mode_err_<j> columns")
        elif "p_alpha" not in runs:
            _note(notes, "info", "Phases-of-Muon per-mode overlay skipped: no p_alpha (power_law_lsq) to give lambda_j")
        else:
            modes = theory.mode_exponents(curves, chosen, runs)
            if modes.empty:
                _note(notes, "info", "Phases-of-Muon per-mode overlay: no cell with an eigenvalue range >= 10 (alpha too small)")

    swept, x, y = _axes(config)
    extra = [s for s in swept if s not in (x, y)]
    res = Result(out, config, manifest, crit, focus, level, labels, kinds, swept, x, y, extra, cells, runs, summary, sens,
                 chosen, phase_all, profile, rate_tab, horizon_tab, modes, agreement, theory_rival,
                 _pick_cells(phase, cells, x, y, a.get("cells")), notes)
    _warnings(res)

    p = res.paths
    p["summary"] = out / "summary.csv"
    summary.to_csv(p["summary"], index=False)
    p["sensitivity"] = out / "sensitivity.csv"
    sens.to_csv(p["sensitivity"], index=False)
    p["phase"] = out / "phase.csv"
    phase_all.to_csv(p["phase"], index=False)
    p["profile"] = out / "profile.csv"
    profile.to_csv(p["profile"], index=False)
    if not rate_tab.empty:
        p["rates"] = out / "rates.csv"
        cells.merge(rate_tab, on="cell_id").to_csv(p["rates"], index=False)
    if not horizon_tab.empty:
        p["rates_horizon"] = out / "rates_horizon.csv"
        horizon_tab.to_csv(p["rates_horizon"], index=False)
    if not modes.empty:
        p["modes"] = out / "modes.csv"
        modes.to_csv(p["modes"], index=False)
    if refine:
        props, new_cfg = refine_edges(summary, config)
        res.refine = props
        if props.empty:
            _note(notes, "info", "--refine-edges: no tuned lr at a grid edge; nothing to widen")
        else:
            p["refine_edges"] = out / "refine_edges.toml"
            p["refine_edges"].write_text(f"# Widened lr grids for the cells whose best lr sat at a grid edge ({out}).\n"
                                         f"# Run: muonlab run {p['refine_edges']} --out {out}_refined\n" + to_toml(new_cfg))
            _note(notes, "info", f"--refine-edges: widened grids written to {p['refine_edges'].name}; run it with muonlab run")

    if figures:
        _figures(res, phase, curves, rate_fits, metric, (horizon, top) if by else None)
    p["analysis"] = out / "analysis.json"
    p["analysis"].write_text(json.dumps(_json_safe({
        "criterion": crit, "criterion_definition": CRITERIA[crit], "focus": focus, "level": level,
        "agreement": agreement, "winner_counts": phase["winner"].value_counts().to_dict(),
        "n_ties": int(phase["tie"].sum()), "n_cells": int(len(phase)), "notes": [{"level": lv, "text": t} for lv, t in notes],
    }), indent=1))
    return res


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


def _warnings(res: Result) -> None:
    s, notes, runs = res.summary, res.notes, res.runs
    budget = s.groupby("optimizer")["n_grid"].agg(["min", "max"])
    if budget["min"].nunique() > 1 or budget["max"].nunique() > 1 or (budget["min"] != budget["max"]).any():
        _note(notes, "warning", "unequal tuning budgets (hyperparameter points per cell): "
              + ", ".join(f"{o}: {r['min']}" + (f"-{r['max']}" if r["max"] != r["min"] else "") for o, r in budget.iterrows()))
    edge = s[s["lr_at_edge"].astype(bool)]
    for o, g in edge.groupby("optimizer"):
        sides = g["lr_edge"].value_counts().to_dict()
        _note(notes, "warning", f"{o}: tuned lr at the edge of its grid in {len(g)}/{(s['optimizer'] == o).sum()} cells "
              f"({', '.join(f'{k}: {v}' for k, v in sides.items())}); widen the grid (muonlab report --refine-edges)")
    div = runs.assign(_d=runs["status"] != "ok").groupby("optimizer")["_d"].mean()
    at = res.chosen.assign(_d=res.chosen["status"] != "ok").groupby("optimizer")["_d"].mean()
    for o in res.labels:
        if div.get(o, 0) > 0 or at.get(o, 0) > 0:
            _note(notes, "warning" if at.get(o, 0) > 0 else "info",
                  f"{o}: {100 * div.get(o, 0):.1f}% of its runs diverged over the whole grid, {100 * at.get(o, 0):.1f}% at the tuned points")
    ph = res.phase
    n_tie = int(ph["tie"].sum())
    if n_tie:
        _note(notes, "warning", f"{n_tie}/{len(ph)} cells are ties (winner's and runner-up's CIs overlap): no winner is claimed there")
    failed = int((ph["winner"] == NONE).sum())
    if failed:
        _note(notes, "warning", f"{failed} cells where every method failed (median criterion +inf)")
    n_seeds = int(s["n_seeds"].min()) if len(s) else 0
    if 0 < n_seeds < 6:
        _note(notes, "warning", f"only {n_seeds} seeds per point: the bootstrap CI of the median cannot be wider than the "
              f"seeds' range, whose coverage is {100 * (1 - 2.0 ** (1 - n_seeds)):.0f}%, so the CIs cover less than the nominal "
              f"{100 * res.level:.0f}%")
    if res.crit == "steps_to_target":
        miss = float(np.mean(~np.isfinite(s["median"].astype(float))))
        if miss > 0:
            _note(notes, "info", f"{100 * miss:.0f}% of tuned (cell, method) pairs never reached the target (median +inf)")


def _figures(res: Result, phase: pd.DataFrame, curves, rate_fits, metric, top: tuple | None) -> None:
    p, out = res.paths, res.out

    def at(df: pd.DataFrame) -> pd.DataFrame:  # the rows at the largest horizon, when one is grouped on
        return df if top is None or top[0] not in df else df[df[top[0]] == top[1]]

    if res.x is not None:
        blabel = None
        if res.theory_rival:
            blabel = f"theory boundary: r*L/L_star = {res.agreement.get('threshold', 1):g} (Shen et al.)"
            if phase["predicted_winner"].nunique() <= 1:
                _note(res.notes, "info", f"theory (Shen et al.): predicted winner is {phase['predicted_winner'].iloc[0]!r} in every cell; "
                      "no boundary inside the map")
        title = f"winner by {res.crit} (tuned lr, median over seeds, {100 * res.level:.0f}% bootstrap CIs)"
        for q in plots.winner_map(phase, res.x, res.y, res.labels, out / "phase_winner.png", title, res.extra, blabel):
            p[q.stem] = q
        for q in plots.ratio_maps(phase, res.x, res.y, res.focus, out / "phase_ratio.png", res.crit, res.extra, res.theory_rival, res.labels):
            p[q.stem] = q
    for q in plots.sensitivity_grid(at(res.sens), at(res.summary), res.cells, res.x, res.y, res.labels, out / "lr_sensitivity.png",
                                    res.crit, res.extra):
        p[q.stem] = q
    q = plots.profile_figure(res.profile, res.labels, out / "performance_profile.png", res.crit)
    if q:
        p[q.stem] = q
    if curves is not None:
        q = plots.curves_figure(curves, at(res.chosen), res.cells, res.curve_cells, res.swept, res.labels, out / "curves_selected.png")
        if q:
            p[q.stem] = q
        if not res.rate_table.empty:
            q = plots.rates_figure(curves, at(rate_fits), at(res.rate_table), res.cells, res.curve_cells[0], res.swept, res.labels,
                                   out / "rates.png", metric)
            if q:
                p[q.stem] = q
        if not res.modes.empty:
            m = res.modes.merge(res.cells, on="cell_id")
            cid = m.sort_values(["p_alpha", "cell_id"], ascending=[False, True])["cell_id"].iloc[0]
            q = plots.modes_figure(curves, at(res.chosen), res.runs, res.cells, cid, res.swept, res.labels, out / "phase_modes.png")
            if q:
                p[q.stem] = q


def analyze(out_dir: "str | Path", criterion: str | None = None, focus: str | None = None,
            refine_edges: bool = False) -> dict[str, Path]:
    """Tune, build the phase table, fit rates, compute the theory overlays and draw the figures
    for the sweep in ``out_dir``. ``criterion`` / ``focus`` override the config's analysis
    section. Returns the written paths by name."""
    return _run(out_dir, criterion, focus, refine_edges).paths


# --- the report ----------------------------------------------------------------------------------
def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else ("inf" if np.isinf(v) and v > 0 else "-inf" if np.isinf(v) else f"{v:.4g}")
    return "" if v is None else str(v)


def _ci(m, lo, hi) -> str:
    return f"{_cell(m)} [{_cell(lo)}, {_cell(hi)}]"


def _blocks(res: Result) -> list[tuple]:
    cfg, man, ph, s = res.config, res.manifest, res.phase, res.summary
    B: list[tuple] = [("h1", f"muonlab report: {cfg.get('name', 'sweep')}")]
    if cfg.get("description"):
        B.append(("p", cfg["description"]))
    B.append(("p", f"Generated {datetime.now(timezone.utc).isoformat(timespec='seconds')} from `{res.out}`. "
                   f"Criterion **{res.crit}**: {CRITERIA[res.crit]}. Focus method: **{res.focus}**. "
                   f"{len(ph)} cells, {len(res.labels)} methods, seeds {cfg.get('seeds')}, {cfg.get('steps')} steps."))

    B.append(("h2", "Result"))
    counts = ph["winner"].where(~ph["tie"], "tie").value_counts()
    B.append(("table", pd.DataFrame({"outcome": counts.index, "cells": counts.to_numpy()})))
    B.append(("p", "A method is called the winner of a cell only where its CI does not overlap the runner-up's; otherwise the cell is a tie."))
    if res.agreement:
        ag = res.agreement
        B.append(("p", f"**Theory agreement score: {_cell(ag['score'])}** ({ag['n_agree']}/{ag['n']} cells): predicted winner of "
                       f"{ag['focus']} vs {ag['rival']} from {ag['source']} (threshold {ag['threshold']:g}) against the measured pairwise "
                       f"verdict (`vs_{ag['rival']}`: {ag['focus']} / {ag['rival']} / tie). Over the {ag['n_decisive']} cells where neither "
                       f"is a tie: {_cell(ag['decisive_score'])}. Spearman correlation of log10 A with the measured advantage of "
                       f"{ag['focus']} (-log10 ratio): {_cell(ag['spearman'])} (p = {_cell(ag['spearman_p'])}). "
                       f"A ranges over [{_cell(ag['advantage_min'])}, {_cell(ag['advantage_max'])}]. Status: {ag['status']}."
                       + (f" On the theory's own quantity (final nuclear gradient norm at the tuned points): {_cell(ag['grad_nuc']['score'])}."
                          if "grad_nuc" in ag else "")))
    B.append(("h2", "Warnings and notes"))
    B.append(("list", [("**warning**: " if lv == "warning" else "") + t for lv, t in res.notes] or ["none"]))

    B.append(("h2", "Phase maps"))
    for k in sorted(res.paths):
        if k.startswith("phase_winner"):
            B.append(("fig", res.paths[k], "Winner per cell. Grey hatched: tie. '*': the winner's tuned lr at its grid edge; "
                                          "black corner: some method's lr at its edge; black line: theory boundary."))
    for k in sorted(res.paths):
        if k.startswith("phase_ratio"):
            B.append(("fig", res.paths[k], f"log10 ratio of {res.focus}'s criterion to {k.removeprefix('phase_ratio_')}'s, "
                                          "on one centred colour scale shared by all rivals; values in parentheses: CIs overlap."))
    if "performance_profile" in res.paths:
        B.append(("fig", res.paths["performance_profile"], "Performance profiles over the cells."))

    B.append(("h2", "Theory"))
    if res.theory_rival:
        B.append(("p", f"{theory.SHEN}. GD's bound scales with r*L and Muon's with L_star (nuclear-norm stationarity), so A > 1 "
                       f"predicts an advantage for Muon. {theory.SHEN_STATUS}. The prediction is about gradient-norm "
                       f"complexity bounds, the map about {res.crit}; read agreement as a check of the bound's ranking, not of the metric."))
        rv = res.theory_rival
        conf = pd.crosstab(ph["predicted_winner"].rename("predicted"), ph[f"vs_{rv}"].rename(f"measured vs_{rv} ({res.crit})"))
        B.append(("p", f"Predicted (rows) against measured pairwise verdicts (columns), cell counts; per cell in phase.csv "
                       f"(`theory_advantage`, `predicted_winner`, `vs_{rv}`):"))
        B.append(("table", conf.reset_index()))
        if "grad_nuc" in res.agreement:
            g = res.agreement["grad_nuc"]
            conf = pd.crosstab(ph["predicted_winner"].rename("predicted"), ph[f"vs_{rv}_grad_nuc"].rename(f"measured vs_{rv} (final_grad_nuc)"))
            B.append(("p", f"On the theory's own quantity, the nuclear norm of the gradient at the same tuned points "
                           f"(`vs_{rv}_grad_nuc`): agreement {_cell(g['score'])} ({g['n_agree']}/{g['n']} cells), "
                           f"{_cell(g['decisive_score'])} over the {g['n_decisive']} decisive cells."))
            B.append(("table", conf.reset_index()))
        by_a = ph.groupby("theory_advantage").agg(cells=("cell_id", "size"), predicted=("predicted_winner", "first"),
                                                  median_log10_ratio=(f"log10_ratio_{rv}", "median")).reset_index()
        B.append(("p", f"Predicted advantage A against the measured median log10({res.crit} {res.focus} / {rv}) over the cells with that A:"))
        B.append(("table", by_a))
    B.append(("p", "Reference rates (exponents of T in the upper bounds), drawn on the rate figure:"))
    B.append(("table", theory.REFERENCE_RATES))
    if not res.modes.empty:
        m = res.modes.groupby("optimizer").agg(slope_median=("slope", "median"), n_runs=("slope", "size"), predicted=("predicted", "first")).reset_index()
        th = theory.mode_theory(str(res.runs["problem"].iloc[0]) if "problem" in res.runs else "power_law_lsq")
        B.append(("p", f"{th.source}. Fitted exponent q of the per-mode decay rate ~ (j^-alpha)^q (modes.csv):"))
        B.append(("table", m))
        if "phase_modes" in res.paths:
            B.append(("fig", res.paths["phase_modes"], "Per-mode decay rate against the covariance eigenvalue, with the predicted slopes."))

    B.append(("h2", "Rates"))
    if not res.rate_table.empty:
        r = res.rate_table
        agg = r.groupby("optimizer").agg(slope_median_over_cells=("slope", "median"), slope_min=("slope", "min"), slope_max=("slope", "max"),
                                         reference=("reference_slope", "first")).reset_index()
        B.append(("p", f"Exponent of {r['metric'].iloc[0]} against step on the window [{_cell(r['window_lo'].iloc[0])}, "
                       f"{_cell(r['window_hi'].iloc[0])}], one fit per seed, median and bootstrap CI per cell in rates.csv. "
                       "Theory rates are stated against the horizon T for tuned schedules; a constant-lr curve flattens at its noise floor."))
        B.append(("table", agg))
        if "rates" in res.paths and (res.out / "rates.png").exists():
            B.append(("fig", res.out / "rates.png", "Fitted exponents with reference slopes -1/4, -1/3, -1/2, -2/3."))
    if not res.horizon_table.empty:
        B.append(("p", "Exponent against the horizon across runs (rates_horizon.csv):"))
        B.append(("table", res.horizon_table))

    B.append(("h2", "Tuning"))
    budget = s.groupby("optimizer").agg(n_grid=("n_grid", "max"), lr_min=("lr_min", "min"), lr_max=("lr_max", "max"),
                                        cells_at_edge=("lr_at_edge", "sum"), diverged_frac_grid=("diverged_frac_grid", "mean"),
                                        diverged_frac_tuned=("n_diverged", "sum"), seeds=("n_seeds", "sum")).reset_index()
    budget["diverged_frac_tuned"] = budget["diverged_frac_tuned"] / budget.pop("seeds")
    B.append(("p", f"Every method: its grid of hyperparameter points per cell (n_grid), the same criterion, the median over seeds; "
                   f"{100 * res.level:.0f}% percentile bootstrap CI (scipy.stats.bootstrap). Protocol: docs/protocol.md."))
    B.append(("table", budget))
    for k in sorted(res.paths):
        if k.startswith("lr_sensitivity"):
            B.append(("fig", res.paths[k], "lr sensitivity per cell (sensitivity.csv)."))
    if "curves_selected" in res.paths:
        B.append(("fig", res.paths["curves_selected"], "Curves of the tuned runs in selected cells."))
    tab = s.assign(value=[_ci(m, lo, hi) + (f" @ lr {_cell(lr)}" if "h_lr" in s else "") + (" (edge)" if e else "")
                          for m, lo, hi, lr, e in zip(s["median"], s["ci_low"], s["ci_high"], s.get("h_lr", s["median"]), s["lr_at_edge"])])
    keys = ["cell_id", *[f"p_{a}" for a in res.swept]]
    wide = tab.pivot_table(index=keys, columns="optimizer", values="value", aggfunc="first").reset_index()
    wide = wide.merge(ph[["cell_id", "winner", "tie", "margin"]].drop_duplicates("cell_id"), on="cell_id")
    wide.columns.name = None
    B.append(("p", f"Tuned {res.crit}: median [CI] @ chosen lr, per cell (summary.csv):"))
    B.append(("table", wide))

    B.append(("h2", "Config"))
    B.append(("code", to_toml(cfg)))
    B.append(("h2", "Provenance"))
    prov = {k: man.get(k) for k in ("config_hash", "git_revision", "started", "finished", "status", "backend", "dtype", "executor",
                                     "n_runs", "n_jobs", "wall_s", "execute_wall_s") if k in man}
    prov.update({f"version {k}": v for k, v in (man.get("versions") or {}).items()})
    if man.get("host"):
        prov["host"] = ", ".join(f"{k}={v}" for k, v in man["host"].items() if v)
    B.append(("table", pd.DataFrame({"field": list(prov), "value": [str(v) for v in prov.values()]})))
    B.append(("p", "Files: " + ", ".join(sorted(q.name for q in res.paths.values()))))
    return B


def _render_md(blocks, out: Path) -> str:
    parts = []
    for b in blocks:
        kind = b[0]
        if kind == "h1":
            parts.append(f"# {b[1]}")
        elif kind == "h2":
            parts.append(f"## {b[1]}")
        elif kind == "p":
            parts.append(b[1])
        elif kind == "list":
            parts.append("\n".join(f"- {t}" for t in b[1]))
        elif kind == "table":
            parts.append(_md_table(b[1]))
        elif kind == "fig":
            parts.append(f"![{b[2]}]({Path(b[1]).relative_to(out) if Path(b[1]).is_relative_to(out) else b[1]})\n\n*{b[2]}*")
        elif kind == "code":
            parts.append(f"```toml\n{b[1]}```")
    return "\n\n".join(parts) + "\n"


def _inline_md(text: str) -> str:
    """HTML of a paragraph's light markdown: **bold** and `code`."""
    t = html.escape(text)
    out, bold, code = [], False, False
    i = 0
    while i < len(t):
        if t.startswith("**", i):
            out.append("</b>" if bold else "<b>")
            bold = not bold
            i += 2
        elif t[i] == "`":
            out.append("</code>" if code else "<code>")
            code = not code
            i += 1
        else:
            out.append(t[i])
            i += 1
    return "".join(out)


def _render_html(blocks, title: str) -> str:
    body = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(b[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_md(b[1])}</p>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_inline_md(t)}</li>" for t in b[1]) + "</ul>")
        elif kind == "table":
            body.append(b[1].map(_cell).to_html(index=False, escape=True, border=0, classes="t"))
        elif kind == "fig":
            data = base64.b64encode(Path(b[1]).read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}"/>'
                        f"<figcaption>{html.escape(b[2])}</figcaption></figure>")
        elif kind == "code":
            body.append(f"<pre>{html.escape(b[1])}</pre>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table.t{border-collapse:collapse;font-size:12px;margin:0.5em 0}table.t td,table.t th{border:1px solid #ccc;padding:2px 6px}"
             "img{max-width:100%}figcaption{font-size:12px;color:#555}pre{background:#f6f6f6;padding:0.6em;font-size:12px;overflow-x:auto}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title><style>{style}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def report(out_dir: "str | Path", criterion: str | None = None, focus: str | None = None,
           refine_edges: bool = False) -> dict[str, Path]:
    """:func:`analyze`, then ``report.md`` and a self-contained ``report.html`` (figures embedded
    as base64) with the config, provenance, figures, tuned tables, warnings and the theory
    agreement score."""
    res = _run(out_dir, criterion, focus, refine_edges)
    blocks = _blocks(res)
    out = res.out
    res.paths["report_md"] = out / "report.md"
    res.paths["report_md"].write_text(_render_md(blocks, out))
    res.paths["report_html"] = out / "report.html"
    res.paths["report_html"].write_text(_render_html(blocks, f"muonlab report: {res.config.get('name', 'sweep')}"))
    return res.paths
