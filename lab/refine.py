"""Adaptive refinement of each tuned learning rate (the ``[refine]`` section; docs/protocol.md).

At a constant lr the final gap of a sign method is an lr-dependent floor, so on a coarse lr grid
a tuned ratio of two methods snaps to the grid spacing (../shared/PAPERS.md, Phases of Muon). A
refined sweep runs its base grid, then rounds k = 1, 2, ...: each round tunes every (cell,
optimizer) on every run so far (``analysis.tune.select``, median over seeds, the one tuning
path), and adds runs at the log-midpoints between the tuned lr and its neighbours wider than
``resolution`` decades, and, with ``extend_edges``, one step beyond the grid's edge (the step to
the inner neighbour) where the optimum sits at the edge. It stops when no (cell, optimizer)
needs a run, or after ``max_rounds``.

Runs are rows: a round's rows copy the tuned point's rows (same cell, same seeds, so common
random numbers hold, same other hyperparameters) with the new lr, take run ids after the
existing ones and ``refine_round = k``, and are planned into jobs (keys ``r<k>-...``) run by the
same executor and store. A round's rows are a deterministic function of the stored results of
the rounds before it (read back from the part files), so a resumed sweep recomputes the same
rows and job keys and skips the jobs already done. Each round's rows are also written to
``refine_round_<k>.csv`` in the sweep directory (a record; runs.csv holds every run).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
import pandas as pd

import runners
from problems.params import ParamError

from .config import SweepConfig
from .plan import JobSpec, plan
from .store import Store

TOL = 1e-9  # decades: spacing within resolution + TOL counts as reached


def _with_results(runs: pd.DataFrame, store: Store, keys: list[str]) -> pd.DataFrame:
    results = store.read_parts("runs", keys)
    return runs.merge(results, on="run_id", how="left", validate="one_to_one").sort_values("run_id")


def _lr_ok(name: str, lr: float) -> bool:
    try:
        runners.hparams(name)["lr"].check("lr", lr)
        return True
    except ParamError:
        return False


def proposals(cfg: SweepConfig, table: pd.DataFrame, curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """The lrs to add next: one row per (cell, optimizer, new lr) with the tuned point's run_ids
    (``template``, one per seed) and why (``midpoint`` / ``edge``). ``table`` is the run table
    with results (status and the criterion's columns) of every run so far."""
    from analysis.tune import NEEDS_CURVES, criterion, hparam_columns, lr_neighbours, select  # noqa: PLC0415

    r = cfg.refine
    crit = r.criterion or cfg.analysis.criterion
    if crit in NEEDS_CURVES and curves is None:
        raise ValueError(f"refine.criterion {crit!r} needs the curves")
    scores = criterion(table, crit, curves)
    summary, _, chosen = select(table, scores, cfg.analysis.level)
    methods = set(r.methods) if r.methods is not None else {o.key for o in cfg.optimizers}
    kinds = {o.key: o.name for o in cfg.optimizers}
    others = [c for c in hparam_columns(table) if c != "h_lr"]
    by_point = table.assign(
        _pt=table[others].astype(object).fillna("<na>").apply(tuple, axis=1) if others else [()] * len(table)
    )
    groups = by_point.groupby(["cell_id", "optimizer", "_pt"], sort=False)
    rows = []
    for _, s in summary.iterrows():
        if s["optimizer"] not in methods or not np.isfinite(s["median"]):
            continue
        pt = tuple("<na>" if pd.isna(s[c]) else s[c] for c in others) if others else ()
        g = groups.get_group((s["cell_id"], s["optimizer"], pt))
        lrs = np.unique(g["h_lr"].to_numpy(float))
        lr = float(s["h_lr"])
        lo, hi = lr_neighbours(lrs, lr)
        new = []
        if r.extend_edges and (np.isfinite(lo) != np.isfinite(hi)):
            # at the edge: one step outward (the step to the inner neighbour); halve only once bracketed
            inner = hi if np.isfinite(hi) else lo
            new.append((lr * lr / inner, "edge"))
        else:
            for w in (lo, hi):
                if np.isfinite(w) and abs(math.log10(lr / w)) > r.resolution + TOL:
                    new.append((math.sqrt(lr * w), "midpoint"))
        template = g[np.isclose(g["h_lr"].to_numpy(float), lr, rtol=1e-12, atol=0)]["run_id"].tolist()
        for v, why in new:
            v = float(f"{v:.12g}")
            if np.isclose(lrs, v, rtol=1e-9, atol=0).any() or not _lr_ok(kinds[s["optimizer"]], v):
                continue
            rows.append(
                {
                    "cell_id": int(s["cell_id"]),
                    "optimizer": s["optimizer"],
                    "lr": v,
                    "why": why,
                    "from_lr": lr,
                    "template": template,
                }
            )
    return pd.DataFrame(rows, columns=["cell_id", "optimizer", "lr", "why", "from_lr", "template"])


def round_rows(cfg: SweepConfig, runs: pd.DataFrame, props: pd.DataFrame, k: int) -> pd.DataFrame:
    """New rows of the run table for round ``k``: each proposal's template rows with the new lr,
    run ids after ``runs``' last, in the order optimizer (config order), lr, cell, seed."""
    if props.empty:
        return runs.iloc[:0]
    order = {o.key: i for i, o in enumerate(cfg.optimizers)}
    by_id = runs.set_index("run_id", drop=False)
    parts = []
    for p in props.itertuples(index=False):
        t = by_id.loc[p.template].copy()
        t["h_lr"] = p.lr
        parts.append(t)
    new = pd.concat(parts, ignore_index=True)
    new["_o"] = new["optimizer"].map(order)
    new = new.sort_values(["_o", "h_lr", "cell_id", "seed"], kind="stable").drop(columns="_o").reset_index(drop=True)
    new["run_id"] = int(runs["run_id"].max()) + 1 + np.arange(len(new))
    new["refine_round"] = k
    return new[list(runs.columns)]


def round_jobs(cfg: SweepConfig, rows: pd.DataFrame, k: int) -> list[JobSpec]:
    """The plan of a round's rows, keys prefixed ``r<k>-`` (distinct from the base grid's)."""
    return [
        dataclasses.replace(j, key=f"r{k:02d}-{j.key}", meta={**j.meta, "refine_round": k}) for j in plan(cfg, rows)
    ]


def run_rounds(
    cfg: SweepConfig, runs: pd.DataFrame, keys: list[str], store: Store, execute: Callable[[list[JobSpec], int], None]
) -> dict:
    """Refine after the base grid (every job of ``keys`` done). ``execute(jobs, k)`` runs the
    jobs of round ``k`` that are not done yet (the caller's executor and store). Returns
    ``{"runs", "keys", "complete", "rounds", "converged"}``: the run table of every run (with
    ``refine_round``), every job key, whether every job finished, the rounds planned, and
    whether refinement stopped because nothing was left to refine (else ``max_rounds``)."""
    runs = runs.assign(refine_round=0) if "refine_round" not in runs else runs
    keys = list(keys)
    r = cfg.refine
    crit = r.criterion or cfg.analysis.criterion
    from analysis.tune import NEEDS_CURVES  # noqa: PLC0415

    k = 0
    while True:
        table = _with_results(runs, store, keys)
        curves = store.read_parts("curves", keys) if crit in NEEDS_CURVES else None
        props = proposals(cfg, table, curves)
        if props.empty or k == r.max_rounds:
            return {"runs": runs, "keys": keys, "complete": True, "rounds": k, "converged": props.empty}
        k += 1
        rows = round_rows(cfg, runs, props, k)
        store.write_table(f"refine_round_{k}", rows)
        jobs = round_jobs(cfg, rows, k)
        execute(jobs, k)
        runs = pd.concat([runs, rows], ignore_index=True)
        keys += [j.key for j in jobs]
        if not {j.key for j in jobs} <= store.done():
            return {"runs": runs, "keys": keys, "complete": False, "rounds": k, "converged": False}
