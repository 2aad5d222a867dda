"""The report page: ``report(out_dir)`` runs :func:`analysis.pipeline.analyze` and renders
what it computed (:class:`analysis.pipeline.Analysis`) as ``report.md`` and a self-contained
``report.html`` (figures embedded as base64). This module only renders; every number comes from
the pipeline."""
from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from . import theory
from .options import CRITERIA
from .pipeline import Analysis
from .pipeline import run as _analyze
from .tune import to_toml


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


def _blocks(res: Analysis) -> list[tuple]:
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
        th = theory.mode_theory(res.data.problem)
        B.append(("p", f"{th.source}. Fitted exponent q of the per-mode decay rate ~ weight_j^q, weights from spectra.csv "
                       f"({th.spectrum}; modes.csv):"))
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
    res = _analyze(out_dir, criterion, focus, refine_edges)
    blocks = _blocks(res)
    out = res.out
    res.paths["report_md"] = out / "report.md"
    res.paths["report_md"].write_text(_render_md(blocks, out))
    res.paths["report_html"] = out / "report.html"
    res.paths["report_html"].write_text(_render_html(blocks, f"muonlab report: {res.config.get('name', 'sweep')}"))
    return res.paths
