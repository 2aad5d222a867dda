"""The phase table and the performance profiles.

Per cell: the winner among the tuned optimizers (lowest median criterion), the runner-up, the
margin (runner-up / winner) with a bootstrap CI, a tie flag where the winner's and runner-up's CIs
overlap (the other methods whose CI overlaps the winner's are listed in ``tied_with``), and for the
focus method the log10 ratio to each rival with its CI and the pairwise verdict ``vs_<rival>``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .floor import at_floor, clip
from .stats import LEVEL, cis_overlap, log10_ratio, log10_ratio_ci, median_ci, verdict

NONE = "none"  # the winner label of a cell where every method failed (all medians +inf)


def _scores(chosen: pd.DataFrame | None, keys: list[str]) -> dict:
    if chosen is None:
        return {}
    out = {}
    for k, g in chosen.sort_values("seed").groupby([*keys, "optimizer"], sort=False):
        out[k] = (g["seed"].to_numpy(), g["score"].to_numpy(float))
    return out


def phase_table(
    summary: pd.DataFrame,
    cells: pd.DataFrame,
    focus: str,
    chosen: pd.DataFrame | None = None,
    level: float = LEVEL,
    by: tuple[str, ...] = (),
    floors: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per cell (and ``by`` value). ``chosen`` (per-seed scores of the tuned points, from
    :func:`analysis.tune.select`) gives the CIs of the margin and of the log-ratios; without it
    those CIs are NaN. Ratios are paired over seeds when both methods ran the same seeds (the
    lab's common random numbers make seed s the same instance and minibatches for every method).
    ``floors`` (per cell_id, :func:`analysis.floor.cell_floors`): medians, CIs and per-seed scores
    are raised to the cell's floor first (columns ``floor`` and ``at_floor``, the methods there)."""
    keys = ["cell_id", *by]
    summary = clip(summary, floors)
    summary = summary.assign(_at_floor=at_floor(summary, floors))
    chosen = clip(chosen, floors, cols=("score",)) if chosen is not None else None
    per = _scores(chosen, keys)
    rows, pairs = [], []  # pairs: (row index, column prefix, a key, b key)
    for cell, g in summary.groupby(keys, sort=True):
        cell = cell if isinstance(cell, tuple) else (cell,)
        g = g.sort_values(["median", "ci_high"], kind="stable")
        by_opt = g.set_index("optimizer")
        win = g.iloc[0]
        row = dict(zip(keys, cell))
        failed = not np.isfinite(win["median"])
        row["winner"] = NONE if failed else win["optimizer"]
        row["winner_median"] = win["median"]
        row["winner_ci_low"], row["winner_ci_high"] = win["ci_low"], win["ci_high"]
        if len(g) > 1:
            run = g.iloc[1]
            row["runner_up"] = run["optimizer"]
            row["runner_up_median"] = run["median"]
            row["margin"] = float(10 ** -log10_ratio(win["median"], run["median"])) if not failed else np.nan
            row["margin_ci_low"] = row["margin_ci_high"] = np.nan
            pairs.append((len(rows), "margin", (*cell, run["optimizer"]), (*cell, win["optimizer"])))
            over = cis_overlap(win["ci_low"], win["ci_high"], g["ci_low"].iloc[1:], g["ci_high"].iloc[1:])
            row["tie"] = bool(over[0]) and not failed
            row["tied_with"] = " ".join(g["optimizer"].iloc[1:][over]) if row["tie"] else ""
        else:
            row.update(
                runner_up="",
                runner_up_median=np.nan,
                margin=np.nan,
                margin_ci_low=np.nan,
                margin_ci_high=np.nan,
                tie=False,
                tied_with="",
            )
        row["winner_lr_at_edge"] = bool(by_opt.loc[win["optimizer"], "lr_at_edge"]) if "lr_at_edge" in by_opt else False
        row["lr_at_edge_methods"] = (
            " ".join(by_opt.index[by_opt["lr_at_edge"].astype(bool)]) if "lr_at_edge" in by_opt else ""
        )
        if floors is not None:
            row["floor"] = float(floors.get(cell[0], 0.0))
            row["at_floor"] = " ".join(by_opt.index[by_opt["_at_floor"].to_numpy(bool)])
        if focus in by_opt.index:
            f = by_opt.loc[focus]
            for rival in by_opt.index:
                if rival == focus:
                    continue
                r = by_opt.loc[rival]
                row[f"log10_ratio_{rival}"] = float(log10_ratio(f["median"], r["median"]))
                row[f"log10_ratio_{rival}_ci_low"] = row[f"log10_ratio_{rival}_ci_high"] = np.nan
                pairs.append((len(rows), f"log10_ratio_{rival}", (*cell, focus), (*cell, rival)))
                row[f"vs_{rival}"] = verdict(
                    focus, rival, f["ci_low"], f["ci_high"], r["ci_low"], r["ci_high"], f["median"], r["median"]
                )
        rows.append(row)

    ok = [p for p in pairs if p[2] in per and p[3] in per]
    if ok:
        a = [per[p[2]][1] for p in ok]
        b = [per[p[3]][1] for p in ok]
        paired = [np.array_equal(per[p[2]][0], per[p[3]][0]) for p in ok]
        lo, hi = log10_ratio_ci(a, b, level, paired)
        for (i, col, _, _), l, h in zip(ok, lo, hi):
            if col == "margin":  # runner-up / winner, as a plain ratio
                rows[i]["margin_ci_low"], rows[i]["margin_ci_high"] = 10.0**l, 10.0**h
            else:
                rows[i][f"{col}_ci_low"], rows[i][f"{col}_ci_high"] = l, h
    phase = pd.DataFrame(rows)
    pcols = [c for c in cells.columns if c.startswith("p_")]
    return cells[["cell_id", *pcols]].drop_duplicates("cell_id").merge(phase, on="cell_id")


def pairwise_verdicts(
    values: pd.DataFrame, a: str, b: str, level: float = LEVEL, keys: tuple[str, ...] = ("cell_id",)
) -> pd.Series:
    """Per cell, ``a``, ``b`` or ``"tie"`` from per-seed ``value`` rows (columns: keys, optimizer,
    value; lower is better): medians with bootstrap CIs, tie where the CIs overlap."""
    v = values[values["optimizer"].isin([a, b])]
    groups = list(v.groupby([*keys, "optimizer"], sort=True)["value"])
    med, lo, hi = median_ci([g.to_numpy(float) for _, g in groups], level)
    stat = {k: (m, l, h) for (k, _), m, l, h in zip(groups, med, lo, hi)}
    out = {}
    for cell in sorted({k[:-1] if len(keys) > 1 else k[0] for k, _ in groups}):
        ck = cell if isinstance(cell, tuple) else (cell,)
        sa, sb = stat.get((*ck, a)), stat.get((*ck, b))
        if sa is None or sb is None:
            continue
        out[cell] = verdict(a, b, sa[1], sa[2], sb[1], sb[2], sa[0], sb[0])
    return pd.Series(out, dtype=object)


def rivals(phase: pd.DataFrame) -> list[str]:
    """The rivals the focus method was compared with (from the ``log10_ratio_<rival>`` columns)."""
    return [
        c.removeprefix("log10_ratio_")
        for c in phase.columns
        if c.startswith("log10_ratio_") and not c.endswith(("_ci_low", "_ci_high"))
    ]


def performance_profile(
    summary: pd.DataFrame,
    taus: np.ndarray | None = None,
    keys: tuple[str, ...] = ("cell_id",),
    floors: pd.Series | None = None,
) -> pd.DataFrame:
    """Dolan & More (2002) performance profiles over cells: rho_s(tau) = fraction of cells in which
    method s's tuned median criterion is within a factor tau of the best method's. Cells where every
    method failed are left out (counted in the ``n_cells`` column); a failure (+inf) never counts.
    Medians are raised to the cell's floor first (``floors``, :func:`analysis.floor.cell_floors`), so a
    best of exactly 0 gives ratios against the floor instead of dropping the cell."""
    summary = clip(summary, floors, cols=("median",))
    wide = summary.pivot_table(index=list(keys), columns="optimizer", values="median", aggfunc="first")
    best = wide.min(axis=1)
    wide = wide[np.isfinite(best) & (best > 0)]
    ratio = wide.div(wide.min(axis=1), axis=0)
    finite = ratio.to_numpy()[np.isfinite(ratio.to_numpy())]
    if taus is None:
        top = max(2.0, float(finite.max()) * 1.2) if finite.size else 2.0
        taus = np.unique(np.concatenate([[1.0], np.geomspace(1.0, top, 200), finite]))
    rows = []
    for opt in ratio.columns:
        r = ratio[opt].to_numpy()
        for t in taus:
            rows.append(
                {
                    "optimizer": opt,
                    "tau": float(t),
                    "fraction": float(np.mean(r <= t * (1 + 1e-12))) if len(r) else np.nan,
                    "n_cells": len(r),
                }
            )
    return pd.DataFrame(rows)
