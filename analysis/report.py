"""From a sweep directory (runs.csv + manifest.json) to the tuned tables and figures:
summary.csv, phase.csv, phase_winner.png, phase_ratio_<rival>.png."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .phase import phase_table
from .plots import ratio_maps, winner_map
from .tune import tune


def _axes(config: dict) -> tuple[list[str], str | None, str | None]:
    swept = list(config["problem"].get("grid", {}))
    a = config.get("analysis", {}) or {}
    x = a.get("x") or (swept[0] if swept else None)
    y = a.get("y") or next((s for s in swept if s != x), None)
    return swept, x, y


def _focus(config: dict) -> str:
    a = config.get("analysis", {}) or {}
    labels = [o.get("label") or o["name"] for o in config["optimizers"]]
    if a.get("focus"):
        return a["focus"]
    return next((o.get("label") or o["name"] for o in config["optimizers"] if o["name"] == "muon"), labels[0])


def analyze(out_dir: "str | Path") -> dict[str, Path]:
    """Tune, build the phase table and draw the figures for the sweep in ``out_dir``."""
    out = Path(out_dir)
    config = json.loads((out / "manifest.json").read_text())["config"]
    crit = (config.get("analysis") or {}).get("criterion", "final_gap")
    runs = pd.read_csv(out / "runs.csv")
    labels = [o.get("label") or o["name"] for o in config["optimizers"]]
    focus = _focus(config)
    summary = tune(runs, crit)
    pcols = [c for c in runs.columns if c.startswith("p_")]
    cells = runs[["cell_id", *pcols]].drop_duplicates("cell_id").sort_values("cell_id")
    summary = cells.merge(summary, on="cell_id")
    phase = phase_table(summary, cells, focus)
    paths = {"summary": out / "summary.csv", "phase": out / "phase.csv"}
    summary.to_csv(paths["summary"], index=False)
    phase.to_csv(paths["phase"], index=False)

    swept, x, y = _axes(config)
    if x is None:
        return paths
    extra = [s for s in swept if s not in (x, y)]
    groups = phase.groupby([f"p_{e}" for e in extra], sort=True) if extra else [((), phase)]
    for key, sub in groups:
        key = key if isinstance(key, tuple) else (key,)
        suffix = "".join(f"_{e}={v:g}" if isinstance(v, float) else f"_{e}={v}" for e, v in zip(extra, key))
        title = f"winner by {crit} (tuned lr, median over seeds)" + (f" [{suffix[1:]}]" if suffix else "")
        paths[f"phase_winner{suffix}"] = winner_map(sub, x, y, labels, out / f"phase_winner{suffix}.png", title)
        for p in ratio_maps(sub, x, y, focus, out, crit, suffix):
            paths[p.stem] = p
    return paths


report = analyze
