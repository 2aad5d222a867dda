"""Execute one job: build the batched problem and optimizer from a :class:`JobSpec`, run it, and
return its results as two tables (runs and curves), keyed by run id.

:func:`run_job` is what every executor calls (in this process or on a Dask worker): it never
raises for a failing job but returns a :class:`JobOutcome` carrying the error, so that one bad job
is recorded as failed and the sweep goes on.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass

import numpy as np
import pandas as pd

import problems
import runners

from problems.backend import get_backend
from .plan import JobSpec, spec_hparams

# runs.csv names of RunResult.final: final_<metric>, except these families, written bare
# (best_gap, steps_to_target, and the every-step accumulators min_<q> / avg_<q>)
BARE = ("best_", "steps_", "min_", "avg_")


def execute(spec: JobSpec, progress=None) -> dict[str, pd.DataFrame]:
    """The job's tables; ``progress`` (optional ``fn(run_steps)``) is fed by the run loop
    (:func:`runners.run`) as the steps go."""
    t0 = time.perf_counter()
    backend = get_backend(spec.backend, spec.dtype)
    seeds = np.asarray(spec.seeds, np.int64)
    problem = problems.make(spec.problem, runs=spec.runs, seed=seeds, backend=backend, **spec.problem_params)
    opt = runners.make(spec.optimizer, **spec_hparams(spec))
    res = runners.run(
        problem,
        opt,
        steps=spec.steps,
        seed=seeds,
        log_points=spec.log_points,
        divergence_factor=spec.divergence_factor,
        target=spec.target,
        accumulate=spec.accumulate,
        progress=progress,
    )
    wall = time.perf_counter() - t0
    run_ids = np.asarray(spec.run_ids, np.int64)
    runs = pd.DataFrame({"run_id": run_ids, "status": res.status, "diverged_step": res.diverged_step})
    for k, v in res.final.items():
        runs[f"final_{k}" if not k.startswith(BARE) else k] = v
    runs["oracle_calls"] = res.oracle_calls_per_step * spec.steps
    for k, v in problem.constants().items():
        runs[f"c_{k}"] = v
    runs["job"] = spec.key
    runs["job_wall_s"] = wall
    k, b = len(res.steps), spec.runs
    curves = pd.DataFrame({"run_id": np.tile(run_ids, k), "step": np.repeat(res.steps, b)})
    for name, arr in res.curves.items():
        curves[name] = arr.reshape(-1)
    return {"runs": runs, "curves": curves, "spectra": spectra_table(spec, problem.spectra())}


def spectra_table(spec: JobSpec, spectra: dict) -> pd.DataFrame:
    """The problem's spectra ({name: (B, k) host array}) as rows run_id, name, index, value, one
    run per instance of the job (runs with the same seed and problem parameters are the same
    instance; the store assembles spectra.csv per cell and seed from them)."""
    per_run = [v for v in spec.problem_params.values() if isinstance(v, list)]
    first = {}
    for i, key in enumerate(zip(spec.seeds, *per_run)):
        first.setdefault(key, i)
    idx = np.asarray(sorted(first.values()), np.int64)
    run_ids = np.asarray(spec.run_ids, np.int64)[idx]
    frames = []
    for name, arr in spectra.items():
        a = np.asarray(arr, np.float64)[idx]
        k = a.shape[1]
        frames.append(
            pd.DataFrame(
                {
                    "run_id": np.repeat(run_ids, k),
                    "name": name,
                    "index": np.tile(np.arange(k), len(idx)),
                    "value": a.reshape(-1),
                }
            )
        )
    return (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run_id", "name", "index", "value"])
    )


@dataclass(frozen=True)
class JobOutcome:
    """What comes back from a job: its tables, or the error that stopped it (picklable)."""

    key: str
    runs: int
    tables: dict | None = None
    error: str | None = None
    detail: str = ""  # the traceback (or the executor's account) of a failure
    steps: int = 0  # the job's steps (its run-steps, runs x steps, are what a progress bar counts)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def run_steps(self) -> int:
        return self.runs * self.steps

    @classmethod
    def failure(cls, spec: JobSpec, exc: BaseException, detail: str | None = None) -> "JobOutcome":
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        if detail is None:
            detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(key=spec.key, runs=spec.runs, error=msg, detail=detail, steps=spec.steps)


def run_job(spec: JobSpec, progress=None) -> JobOutcome:
    """Run one job; an exception becomes a failed outcome instead of ending the sweep.
    ``progress``: as in :func:`execute`."""
    try:
        return JobOutcome(key=spec.key, runs=spec.runs, tables=execute(spec, progress), steps=spec.steps)
    except Exception as exc:  # noqa: BLE001  (any job error is recorded, the sweep goes on)
        return JobOutcome.failure(spec, exc)
