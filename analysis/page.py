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
from .pipeline import stage_log
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


def _trend_numbers(t: dict) -> str:
    stat = {"spearman": "rho", "kendall": "tau"}[t["method"]]
    return (
        f"{stat} = {_cell(t['statistic'])}, two-sided p = {_cell(t['p_value'])}, {100 * t['level']:.0f}% CI "
        f"[{_cell(t['ci_low'])}, {_cell(t['ci_high'])}], {t['n']} cells"
    )


def _shen_blocks(res: Analysis) -> list[tuple]:
    """Shen et al.'s A per cell (with the bound's r and with the gradient rank seen) next to the
    measured advantage, and the trend tests: what :func:`analysis.pipeline._shen` computed."""
    sh = res.shen
    seen = sh["predictor"] == "A_seen"
    B = [
        (
            "p",
            f"{theory.SHEN}; {theory.SHEN_STATUS}. GD's bound scales with r*L and Muon's with L_star; the r enters "
            "through "
            "||G||_* <= sqrt(rank G) ||G||_F, so it is the rank of the gradients seen. With r = min(m, n) "
            "(`theory_advantage`), "
            f"L <= L_star <= r L gives A >= 1 in every cell, so 'Muon wins where A > 1' cannot fail and is not used. "
            + (
                "`A_seen` = k L / L_star with k (`seen_rank`) the numerical rank of the exact gradient (singular "
                "values > "
                f"{sh['rank_rtol']:g} x the largest; curves.csv `grad_rank`), the maximum over the logged steps >= 1 "
                "and the runs "
                f"of the cell. "
                if seen
                else "curves.csv has no `grad_rank`, so A uses the bound's r here (see the warning). "
            )
            + f"A ranges over [{_cell(sh['A_min'])}, {_cell(sh['A_max'])}]. "
            f"The measured advantage is log10({sh['rival']} / "
            f"{sh['focus']}) of the tuned medians (positive = {sh['focus']} better): on {sh['criterion']}, and on the "
            "theory's own "
            "quantity final_grad_nuc at the same tuned points where runs.csv has it. Per cell (also in phase.csv):",
        )
    ]
    B.append(("table", sh["table"]))
    t0 = sh["tests"][0]
    B.append(
        (
            "p",
            f"Two-sided trend test of the measured advantage against log {sh['predictor']} (the prediction: it rises "
            "with A). "
            f"Statistic {t0['method']} (Spearman: permutation p-value; a rank statistic, so the log changes nothing), "
            f"{100 * t0['level']:.0f}% bootstrap CI over cells. It is **reproduced** where the statistic is positive "
            "with "
            f"p < {t0['alpha']:g}. It **fails** (not reproduced) where the statistic is negative with p < "
            f"{t0['alpha']:g}, or its CI "
            "lies entirely below 0; it is **partly** (no trend) where neither sign is significant, and not testable "
            "with "
            "fewer than 4 cells with finite values or a constant A.",
        )
    )
    B.append(
        (
            "table",
            pd.DataFrame(
                [
                    {
                        "quantity": t["quantity"],
                        "predictor": f"log {t['predictor']}",
                        "status": t["status"],
                        "statistic": t["statistic"],
                        "p_value": t["p_value"],
                        "ci_low": t["ci_low"],
                        "ci_high": t["ci_high"],
                        "cells": t["n"],
                        "reason": t["reason"],
                    }
                    for t in sh["tests"]
                ]
            ),
        )
    )
    return B


def _blocks(res: Analysis) -> list[tuple]:
    cfg, man, ph, s = res.config, res.manifest, res.phase, res.summary
    B: list[tuple] = [("h1", f"muonlab report: {cfg.get('name', 'sweep')}")]
    if cfg.get("description"):
        B.append(("p", cfg["description"]))
    B.append(
        (
            "p",
            f"Generated {datetime.now(timezone.utc).isoformat(timespec='seconds')} from `{res.out}`. "
            f"Criterion **{res.crit}**: {CRITERIA[res.crit]}. Focus method: **{res.focus}**. "
            f"{len(ph)} cells, {len(res.labels)} methods, seeds {cfg.get('seeds')}, {cfg.get('steps')} steps.",
        )
    )

    B.append(("h2", "Result"))
    counts = ph["winner"].where(~ph["tie"], "tie").value_counts()
    B.append(("table", pd.DataFrame({"outcome": counts.index, "cells": counts.to_numpy()})))
    B.append(
        (
            "p",
            "A method is called the winner of a cell only where its CI does not overlap the runner-up's; otherwise "
            "the cell is a tie.",
        )
    )
    for t in res.shen.get("tests", []):
        B.append(
            (
                "p",
                f"Shen et al. trend ({res.shen['focus']} over {res.shen['rival']} on {t['quantity']} against log "
                f"{t['predictor']}): "
                f"**{t['status']}** ({_trend_numbers(t)}); see Theory.",
            )
        )
    B.append(("h2", "Warnings and notes"))
    B.append(("list", [("**warning**: " if lv == "warning" else "") + t for lv, t in res.notes] or ["none"]))

    B.append(("h2", "Phase maps"))
    for k in sorted(res.paths):
        if k.startswith("phase_winner"):
            B.append(
                (
                    "fig",
                    res.paths[k],
                    "Winner per cell. Grey hatched: tie. '*': the winner's tuned lr at its grid edge; "
                    "black corner: some method's lr at its edge.",
                )
            )
    for k in sorted(res.paths):
        if k.startswith("phase_ratio"):
            B.append(
                (
                    "fig",
                    res.paths[k],
                    f"log10 ratio of {res.focus}'s criterion to {k.removeprefix('phase_ratio_')}'s, "
                    "on one centred colour scale shared by all rivals; values in parentheses: CIs overlap; "
                    "≤ / ≥: the focus / the rival at the stated floor (phase.csv at_floor): a bound.",
                )
            )
    if "performance_profile" in res.paths:
        B.append(("fig", res.paths["performance_profile"], "Performance profiles over the cells."))

    B.append(("h2", "Theory"))
    if res.shen:
        B.extend(_shen_blocks(res))
    B.append(
        (
            "p",
            "Reference rates (exponents of T in the upper bounds); the rate figure draws each only for its own method:",
        )
    )
    B.append(("table", theory.REFERENCE_RATES))
    if not res.modes.empty:
        m = (
            res.modes.groupby("optimizer")
            .agg(slope_median=("slope", "median"), n_runs=("slope", "size"), predicted=("predicted", "first"))
            .reset_index()
        )
        th = theory.mode_theory(res.data.problem)
        B.append(
            (
                "p",
                f"{th.source}. Fitted exponent q of the per-mode decay rate ~ weight_j^q, weights from spectra.csv "
                f"({th.spectrum}; modes.csv):",
            )
        )
        B.append(("table", m))
        if "phase_modes" in res.paths:
            B.append(
                (
                    "fig",
                    res.paths["phase_modes"],
                    "Per-mode decay rate against the covariance eigenvalue, with the predicted slopes.",
                )
            )

    B.append(("h2", "Rates"))
    if not res.rate_table.empty:
        r = res.rate_table
        agg = (
            r.groupby("optimizer")
            .agg(
                slope_median_over_cells=("slope", "median"),
                slope_min=("slope", "min"),
                slope_max=("slope", "max"),
                reference=("reference_slope", "first"),
            )
            .reset_index()
        )
        B.append(
            (
                "p",
                f"Exponent of {r['metric'].iloc[0]} against step on the window [{_cell(r['window_lo'].iloc[0])}, "
                f"{_cell(r['window_hi'].iloc[0])}], one fit per seed, median and bootstrap CI per cell in rates.csv. "
                "Theory rates are stated against the horizon T for tuned schedules; a constant-lr curve flattens at "
                "its noise floor.",
            )
        )
        B.append(("table", agg))
        if "rates" in res.paths and (res.out / "rates.png").exists():
            B.append(
                (
                    "fig",
                    res.out / "rates.png",
                    "Fitted exponents; dotted / bars: a method's own theory rate, drawn only where it applies "
                    "(its kind and metric in the theory, a horizon-free schedule).",
                )
            )
    if not res.horizon_table.empty:
        B.append(("p", "Exponent against the horizon across runs (rates_horizon.csv):"))
        B.append(("table", res.horizon_table))

    B.append(("h2", "Tuning"))
    budget = (
        s.groupby("optimizer")
        .agg(
            n_grid=("n_grid", "max"),
            lr_min=("lr_min", "min"),
            lr_max=("lr_max", "max"),
            cells_at_edge=("lr_at_edge", "sum"),
            diverged_frac_grid=("diverged_frac_grid", "mean"),
            diverged_frac_tuned=("n_diverged", "sum"),
            seeds=("n_seeds", "sum"),
        )
        .reset_index()
    )
    budget["diverged_frac_tuned"] = budget["diverged_frac_tuned"] / budget.pop("seeds")
    B.append(
        (
            "p",
            "Every method: its grid of hyperparameter points per cell (n_grid), the same criterion, the median over "
            "seeds; "
            f"{100 * res.level:.0f}% percentile bootstrap CI (scipy.stats.bootstrap). Protocol: docs/protocol.md.",
        )
    )
    B.append(("table", budget))
    for k in sorted(res.paths):
        if k.startswith("lr_sensitivity"):
            B.append(("fig", res.paths[k], "lr sensitivity per cell (sensitivity.csv)."))
    if "curves_selected" in res.paths:
        B.append(("fig", res.paths["curves_selected"], "Curves of the tuned runs in selected cells."))
    tab = s.assign(
        value=[
            _ci(m, lo, hi) + (f" @ lr {_cell(lr)}" if "h_lr" in s else "") + (" (edge)" if e else "")
            for m, lo, hi, lr, e in zip(
                s["median"], s["ci_low"], s["ci_high"], s.get("h_lr", s["median"]), s["lr_at_edge"]
            )
        ]
    )
    keys = ["cell_id", *[f"p_{a}" for a in res.swept]]
    wide = tab.pivot_table(index=keys, columns="optimizer", values="value", aggfunc="first").reset_index()
    wide = wide.merge(ph[["cell_id", "winner", "tie", "margin"]].drop_duplicates("cell_id"), on="cell_id")
    wide.columns.name = None
    B.append(("p", f"Tuned {res.crit}: median [CI] @ chosen lr, per cell (summary.csv):"))
    B.append(("table", wide))

    B.append(("h2", "Config"))
    B.append(("code", to_toml(cfg)))
    B.append(("h2", "Provenance"))
    prov = {
        k: man.get(k)
        for k in (
            "config_hash",
            "git_revision",
            "started",
            "finished",
            "status",
            "backend",
            "dtype",
            "executor",
            "n_runs",
            "n_jobs",
            "wall_s",
            "execute_wall_s",
        )
        if k in man
    }
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
            parts.append(
                f"![{b[2]}]({Path(b[1]).relative_to(out) if Path(b[1]).is_relative_to(out) else b[1]})\n\n*{b[2]}*"
            )
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
            body.append(
                f'<figure><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}"/>'
                f"<figcaption>{html.escape(b[2])}</figcaption></figure>"
            )
        elif kind == "code":
            body.append(f"<pre>{html.escape(b[1])}</pre>")
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table.t{border-collapse:collapse;font-size:12px;margin:0.5em 0}table.t td,table.t th{border:1px solid "
        "#ccc;padding:2px 6px}"
        "img{max-width:100%}figcaption{font-size:12px;color:#555}pre{background:#f6f6f6;padding:0.6em;font-size:12px;overflow-x:auto}"
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def report(
    out_dir: "str | Path", criterion: str | None = None, focus: str | None = None, refine_edges: bool = False
) -> dict[str, Path]:
    """:func:`analyze`, then ``report.md`` and a self-contained ``report.html`` (figures embedded
    as base64) with the config, provenance, figures, tuned tables, warnings and the theory
    overlays (Shen et al.'s A with the gradient rank seen and the trend test of the advantage)."""
    res = _analyze(out_dir, criterion, focus, refine_edges)
    stage_log.info(f"analysis: report ({res.out}/report.md, report.html)")
    blocks = _blocks(res)
    out = res.out
    res.paths["report_md"] = out / "report.md"
    res.paths["report_md"].write_text(_render_md(blocks, out))
    res.paths["report_html"] = out / "report.html"
    res.paths["report_html"].write_text(_render_html(blocks, f"muonlab report: {res.config.get('name', 'sweep')}"))
    return res.paths
