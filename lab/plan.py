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
from problems.params import ParamError

from problems.backend import get_backend
from .config import SweepConfig
from .errors import ConfigError


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
    accumulate: tuple = ()  # every-step accumulators (runners.accumulate); () = off

    @property
    def runs(self) -> int:
        return len(self.run_ids)


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def spec_hparams(spec: JobSpec) -> dict:
    """The job's hyperparameters as ``runners.make`` takes them (per-run lists as arrays)."""
    return {k: np.asarray(v) if isinstance(v, list) else v for k, v in spec.hparams.items()}


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
        keys = [f"p_{k}" for k, p in pdecl.items() if not p.per_run] + [
            f"h_{k}" for k, p in hdecl.items() if not p.per_run
        ]
        for _, group in mine.groupby(keys, sort=False, dropna=False) if keys else [(None, mine)]:
            structural = {k: _py(group[f"p_{k}"].iloc[0]) for k, p in pdecl.items()}
            size = chunk_size(cfg, structural) if max_runs is None else max_runs
            for start in range(0, len(group), size):
                chunk = group.iloc[start : start + size]
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
                if cfg.accumulate:  # only when set, so that the job keys of other sweeps stay as they were
                    body["accumulate"] = tuple(cfg.accumulate)
                digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:10]
                key = f"{len(jobs):05d}-{opt.key}-{digest}"
                jobs.append(JobSpec(key=key, meta={"label": opt.key}, **body))
    return jobs


def _field(cfg: SweepConfig, name: str) -> str:
    """The config field a problem parameter was given in (or would be)."""
    for section in ("grid", "fixed"):
        if name in getattr(cfg.problem, section):
            return f"problem.{section}.{name}"
    return f"problem.{name}"


def _located(err: ParamError, locate) -> ConfigError:
    name, _, rest = str(err).partition(": ")
    return ConfigError(f"{locate(name)}: {rest}" if rest else str(err))


def check_instances(cfg: SweepConfig, runs: pd.DataFrame, jobs: list[JobSpec]) -> None:
    """Build every problem cell once (first seed, NumPy, chunked like the jobs) and every
    optimizer's hyperparameter points, so that constraints *between* parameters (noise kind vs
    sigma, a parameter a problem does not use, ...), which only the constructors know, fail here
    with the field named, before anything is written or run, instead of failing every job."""
    kind = problems.get(cfg.problem.kind)
    pdecl = kind.params
    backend = get_backend("numpy", cfg.dtype)
    cells = runs.drop_duplicates("cell_id").sort_values("cell_id")
    keys = [f"p_{k}" for k, p in pdecl.items() if not p.per_run]
    for _, group in cells.groupby(keys, sort=False, dropna=False) if keys else [(None, cells)]:
        structural = {k: _py(group[f"p_{k}"].iloc[0]) for k, p in pdecl.items()}
        size = chunk_size(cfg, structural)
        for start in range(0, len(group), size):
            chunk = group.iloc[start : start + size]
            try:
                problems.make(
                    cfg.problem.kind,
                    runs=len(chunk),
                    seed=cfg.seeds[0],
                    backend=backend,
                    **_columns(chunk, "p_", pdecl),
                )
            except ParamError as e:
                raise _located(e, lambda name: _field(cfg, name)) from None
    index = {o.key: i for i, o in enumerate(cfg.optimizers)}
    for spec in jobs:
        i = index[spec.meta["label"]]
        try:
            runners.make(spec.optimizer, **spec_hparams(spec))
        except ParamError as e:
            raise _located(
                e, lambda name: f"optimizers.{i}.lr" if name == "lr" else f"optimizers.{i}.hparams.{name}"
            ) from None
