"""Preflight: what a sweep will cost, known before its first job, and a one-line refusal of what
cannot fit.

:func:`estimate` reads the plan (the :class:`lab.plan.JobSpec` list) and the problems' declared
working sets (``Problem.run_bytes``): jobs, runs, run-steps (runs x steps), the peak memory of the
largest job (its arrays, plus its result tables) and of assembling the result grids, and this
machine's available memory. :func:`check` refuses, naming the fields, a peak larger than the
available memory or the config's ``max_memory_gb`` (more run-steps than ``max_run_steps`` is
refused by :mod:`lab.config`). :func:`calibrate` times a few steps of each kind
of job on a small batch (``muonlab run --dry-run``), for a time estimate. Nothing here writes.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import problems
import runners

from .config import SweepConfig
from .errors import ConfigError
from .plan import JobSpec

GiB, MiB = 2**30, 2**20
# A job's memory against its runs' declared Problem.run_bytes (tracemalloc, which traces NumPy's
# allocations; tests/lab/test_preflight.py checks the bound on every problem kind): the instance is
# generated on the host in float64 and the lanes hold their own sub-batches, so the bytes per run
# were 0.4-1.8x the declared ones at the shipped presets' sizes, plus up to ~20 MiB per job (thread
# pool, set-up temporaries, pandas tables).
JOB_FACTOR = 2.0
JOB_OVERHEAD = 32 * 2**20
# Assembling runs.csv / curves.csv: pandas holds a table about three times over (the parts, their
# concatenation, the sorted copy) while it writes it.
GRID_FACTOR = 3
CURVE_COLUMNS = 16  # run_id, step, the logged metrics, room for a problem's extra curves (8 bytes each)
RUN_COLUMNS = 64  # runs.csv: parameters, hyperparameters, final metrics, constants


@dataclass(frozen=True)
class Estimate:
    """What a sweep's plan costs (bytes, counts; ``seconds`` only after :func:`calibrate`)."""

    jobs: int
    runs: int
    steps: int
    run_steps: int
    logged: int  # logged steps per run (curves.csv rows per run)
    run_bytes: int  # declared working set of the largest run
    job_bytes: int  # the largest job: its arrays and result tables
    grid_bytes: int  # assembling the result grids
    available_bytes: int | None  # this machine's available memory (None: unknown)
    worst: JobSpec | None = None  # the job with the largest working set
    seconds: float | None = None  # calibrated time of the jobs (run-steps at the measured rates)
    rates: dict = dataclasses.field(default_factory=dict)  # optimizer label -> measured run-steps/s

    @property
    def peak_bytes(self) -> int:
        return max(self.job_bytes, self.grid_bytes)


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup (container) limit."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            avail = min(avail, max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return avail


def _sizing_params(spec: JobSpec) -> dict:
    """The job's problem parameters with per-run lists replaced by their largest value (what
    sizes its arrays: the largest batch_size, say)."""
    out = {}
    for k, v in spec.problem_params.items():
        if isinstance(v, list):
            nums = [x for x in v if isinstance(x, (int, float)) and not isinstance(x, bool)]
            v = max(nums) if len(nums) == len(v) and nums else v[0]
        out[k] = v
    return out


def run_bytes(spec: JobSpec) -> int:
    kind = problems.get(spec.problem)
    return max(int(kind.cls.run_bytes(_sizing_params(spec), np.dtype(spec.dtype).itemsize)), 1)


def job_bytes(spec: JobSpec) -> int:
    """Peak bytes of one job: its arrays (x :data:`JOB_FACTOR`), its curves/runs tables and
    :data:`JOB_OVERHEAD`."""
    logged = len(runners.log_steps(spec.steps, spec.log_points))
    tables = spec.runs * (logged * CURVE_COLUMNS + RUN_COLUMNS) * 8
    return int(JOB_FACTOR * spec.runs * run_bytes(spec)) + tables + JOB_OVERHEAD


def estimate(cfg: SweepConfig, jobs: list[JobSpec]) -> Estimate:
    runs = sum(j.runs for j in jobs)
    logged = len(runners.log_steps(cfg.steps, cfg.log_points))
    worst = max(jobs, key=job_bytes, default=None)
    grid = GRID_FACTOR * runs * (logged * CURVE_COLUMNS + RUN_COLUMNS) * 8
    return Estimate(
        jobs=len(jobs),
        runs=runs,
        steps=cfg.steps,
        run_steps=runs * cfg.steps,
        logged=logged,
        run_bytes=max((run_bytes(j) for j in jobs), default=0),
        job_bytes=job_bytes(worst) if worst is not None else 0,
        grid_bytes=grid,
        available_bytes=available_memory(),
        worst=worst,
    )


def size(b: float) -> str:
    """Bytes in words: 512 MiB, 3.2 GiB, 1.5e+03 GiB."""
    if b < GiB:
        return f"{b / MiB:.0f} MiB" if b >= MiB else f"{b / 1024:.0f} KiB"
    g = b / GiB
    return f"{g:.1f} GiB" if g < 1000 else f"{g:.3g} GiB"


def _memory_fields(cfg: SweepConfig, spec: JobSpec) -> str:
    """The config fields that size a run of ``spec`` (each numeric problem parameter given in the
    config whose doubling grows ``run_bytes``), with their values."""
    kind = problems.get(spec.problem)
    params = _sizing_params(spec)
    item = np.dtype(spec.dtype).itemsize
    base = kind.cls.run_bytes(params, item)
    named = []
    for section in ("fixed", "grid"):
        for k in getattr(cfg.problem, section):
            v = params.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
                if kind.cls.run_bytes({**params, k: v * 2}, item) > base:
                    named.append(f"problem.{section}.{k} = {v:g}")
    return ", ".join(named) or f"problem.kind = {spec.problem!r} (its default sizes)"


def check(cfg: SweepConfig, est: Estimate) -> None:
    """Refuse, in one line naming the fields, a sweep whose estimated peak memory exceeds this
    machine's available memory or the config's ``max_memory_gb``. (Run-steps against
    ``max_run_steps`` are checked by lab.config; ``memory_budget_mb`` only sizes the jobs: a run
    larger than it is a job of its own.)"""
    avail = est.available_bytes
    limits = []
    if avail is not None:
        limits.append((avail, f"this machine has {size(avail)} available"))
    if cfg.max_memory_gb is not None:
        limits.append((cfg.max_memory_gb * GiB, f"max_memory_gb = {cfg.max_memory_gb:g}"))
    if not limits:
        return
    limit, which = min(limits, key=lambda x: x[0])
    if est.peak_bytes <= limit:
        return
    if est.job_bytes >= est.grid_bytes:
        split = (
            f", or a smaller memory_budget_mb (now {cfg.memory_budget_mb:g}) to split the jobs"
            if est.worst is not None and est.worst.runs > 1
            else ""
        )
        raise ConfigError(
            f"{_memory_fields(cfg, est.worst)}: the largest job ({est.worst.runs:,} run(s) of ~{size(est.run_bytes)}, "
            f"{cfg.dtype}) needs ~{size(est.job_bytes)}, but {which}; allowed: smaller sizes{split}"
        )
    raise ConfigError(
        f"log_points: assembling curves.csv ({est.runs:,} runs x {est.logged} logged steps) needs "
        f"~{size(est.grid_bytes)}, but {which}; allowed: fewer log_points, seeds or grid points"
    )


def preflight(cfg: SweepConfig, jobs: list[JobSpec]) -> Estimate:
    """:func:`estimate` then :func:`check`; returns the estimate."""
    est = estimate(cfg, jobs)
    check(cfg, est)
    return est


# --- time ---------------------------------------------------------------------------------------
def _small(spec: JobSpec, runs: int, steps: int) -> JobSpec:
    cut = {k: v[:runs] if isinstance(v, list) else v for k, v in spec.problem_params.items()}
    hcut = {k: v[:runs] if isinstance(v, list) else v for k, v in spec.hparams.items()}
    return dataclasses.replace(
        spec,
        problem_params=cut,
        hparams=hcut,
        seeds=spec.seeds[:runs],
        run_ids=spec.run_ids[:runs],
        steps=steps,
        log_points=2,
    )


def calibrate(est: Estimate, jobs: list[JobSpec], budget_s: float = 5.0, runs: int = 64, steps: int = 16) -> Estimate:
    """The estimate with ``seconds``: each kind of job (optimizer label x structural parameters)
    run on ``runs`` runs for 2 and 2 + ``steps`` steps (both log steps 0, 1 and the last, so the
    difference is ``steps`` plain steps; the faster of two tries); its run-steps/s applied to that
    kind's run-steps. A kind whose first 2 steps take over ``budget_s`` / 4 counts them as its rate.
    A small batch vectorizes less than a full job, so the figure errs long. Kinds not timed within
    ``budget_s`` take the slowest rate measured."""
    from .jobs import execute  # noqa: PLC0415

    groups: dict[tuple, list[JobSpec]] = {}
    for j in jobs:
        structural = {k: v for k, v in {**j.problem_params, **j.hparams}.items() if not isinstance(v, list)}
        groups.setdefault((j.meta.get("label"), repr(sorted(structural.items()))), []).append(j)
    t_end = time.perf_counter() + budget_s
    rate: dict[tuple, float] = {}
    for key, members in groups.items():
        if time.perf_counter() > t_end:
            break
        first = members[0]
        b = max(1, min(runs, first.runs, int(64 * MiB // run_bytes(first))))  # a small batch of small memory
        t = time.perf_counter()
        execute(_small(first, b, 2))
        wall = {2: time.perf_counter() - t}
        if wall[2] > budget_s / 4:  # slow steps (large matrices): set-up and 2 steps as steps, errs long
            rate[key] = b * 2 / wall[2]
            continue
        for s in (2, 2 + steps):
            small = _small(first, b, s)
            for _ in range(2 if s == 2 + steps else 1):
                t = time.perf_counter()
                execute(small)
                wall[s] = min(wall.get(s, np.inf), time.perf_counter() - t)
        step_s = wall[2 + steps] - wall[2]
        if step_s < 0.1 * wall[2 + steps]:  # lost in the noise of a busy machine: count the set-up too
            step_s = wall[2 + steps] * steps / (2 + steps)
        rate[key] = b * steps / step_s
    if not rate:
        return est
    slowest = min(rate.values())
    seconds, by_label = 0.0, {}
    for key, members in groups.items():
        r = rate.get(key, slowest)
        seconds += sum(j.runs * j.steps for j in members) / r
        if key in rate:  # only the kinds actually timed
            by_label[key[0]] = min(by_label.get(key[0], r), r)
    return dataclasses.replace(est, seconds=seconds, rates=by_label)
