"""The batching plan: group runs into vectorized jobs (one optimizer x one problem kind x one set
of structural parameters), split into chunks whose working set fits a memory budget."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import problems
import runners

from .config import SweepConfig


@dataclass(frozen=True)
class JobSpec:
    """Everything one job needs; a pure, picklable description (the job is a function of it)."""

    key: str
    problem: str
    problem_params: dict  # name -> scalar (structural) or list (per-run)
    optimizer: str
    hparams: dict  # name -> scalar (structural) or list (per-run)
    seeds: list
    run_ids: list
    steps: int
    log_points: int
    target: float
    divergence_factor: float
    backend: str
    dtype: str
    meta: dict = field(default_factory=dict)

    @property
    def runs(self) -> int:
        return len(self.run_ids)


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def _columns(chunk: pd.DataFrame, prefix: str, decl: dict) -> dict:
    out = {}
    for name, p in decl.items():
        col = chunk[prefix + name].tolist()
        out[name] = _py(col[0]) if not p.per_run else [_py(v) for v in col]
    return out


def chunk_size(cfg: SweepConfig, structural: dict) -> int:
    kind = problems.get(cfg.problem.kind)
    itemsize = np.dtype(cfg.dtype).itemsize
    per_run = max(kind.cls.run_bytes(structural, itemsize), 1)
    return max(1, int(cfg.memory_budget_mb * 2**20 // per_run))


def plan(cfg: SweepConfig, runs: pd.DataFrame, max_runs: int | None = None) -> list[JobSpec]:
    """Jobs covering every run exactly once, in run-id order within each job."""
    pdecl = problems.get(cfg.problem.kind).params
    jobs: list[JobSpec] = []
    for opt in cfg.optimizers:
        hdecl = runners.hparams(opt.name)
        mine = runs[runs["optimizer"] == opt.key]
        keys = [f"p_{k}" for k, p in pdecl.items() if not p.per_run] + [f"h_{k}" for k, p in hdecl.items() if not p.per_run]
        for _, group in mine.groupby(keys, sort=False, dropna=False) if keys else [(None, mine)]:
            structural = {k: _py(group[f"p_{k}"].iloc[0]) for k, p in pdecl.items()}
            size = chunk_size(cfg, structural) if max_runs is None else max_runs
            for start in range(0, len(group), size):
                chunk = group.iloc[start:start + size]
                body = dict(
                    problem=cfg.problem.kind,
                    problem_params=_columns(chunk, "p_", pdecl),
                    optimizer=opt.name,
                    hparams=_columns(chunk, "h_", hdecl),
                    seeds=[int(s) for s in chunk["seed"]],
                    run_ids=[int(r) for r in chunk["run_id"]],
                    steps=cfg.steps,
                    log_points=cfg.log_points,
                    target=cfg.target,
                    divergence_factor=cfg.divergence_factor,
                    backend=cfg.backend,
                    dtype=cfg.dtype,
                )
                digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:10]
                key = f"{len(jobs):05d}-{opt.key}-{digest}"
                jobs.append(JobSpec(key=key, meta={"label": opt.key}, **body))
    return jobs
