"""Sweep expansion: a validated config -> the table of runs (one row per cell x optimizer x
hyperparameter point x seed), with stable integer run ids in a fixed order."""

from __future__ import annotations

import itertools

import pandas as pd

import runners

from .config import SweepConfig


def product(values: dict[str, list]) -> list[dict]:
    keys = list(values)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(values[k] for k in keys))]


def cells(cfg: SweepConfig) -> pd.DataFrame:
    """One row per problem cell: ``cell_id`` and every problem parameter as ``p_<name>``."""
    rows = product(cfg.grids.problem)
    df = pd.DataFrame([{f"p_{k}": v for k, v in r.items()} for r in rows])
    df.insert(0, "cell_id", range(len(df)))
    return df


def expand_runs(cfg: SweepConfig) -> pd.DataFrame:
    """The run table: run_id, cell_id, problem, p_*, optimizer (label), optimizer_kind, optimizer_family
    (the class's declared ``FAMILY``), h_*, seed.
    Order: optimizer, hyperparameter point, cell, seed (so one job holds contiguous run ids)."""
    cell_rows = cells(cfg).to_dict("records")
    grids = cfg.grids.hparams
    rows = []
    for opt in cfg.optimizers:
        family = runners.get(opt.name).FAMILY
        for hp in product(grids[opt.key]):
            h = {f"h_{k}": v for k, v in hp.items()}
            for c in cell_rows:
                for s in cfg.seeds:
                    rows.append(
                        {
                            **c,
                            "optimizer": opt.key,
                            "optimizer_kind": opt.name,
                            "optimizer_family": family,
                            **h,
                            "seed": s,
                        }
                    )
    df = pd.DataFrame(rows)
    df.insert(0, "run_id", range(len(df)))
    df.insert(2, "problem", cfg.problem.kind)
    hcols = list(dict.fromkeys(f"h_{k}" for opt in cfg.optimizers for k in grids[opt.key]))
    pcols = [c for c in df.columns if c.startswith("p_")]
    return df[
        ["run_id", "cell_id", "problem", *pcols, "optimizer", "optimizer_kind", "optimizer_family", *hcols, "seed"]
    ]
