"""Execute one job: build the batched problem and optimizer from a :class:`JobSpec`, run it, and
return its results as two tables (runs and curves), keyed by run id."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

import problems
import runners

from .backend import get_backend
from .plan import JobSpec


def execute(spec: JobSpec) -> dict[str, pd.DataFrame]:
    t0 = time.perf_counter()
    backend = get_backend(spec.backend, spec.dtype)
    seeds = np.asarray(spec.seeds, np.int64)
    problem = problems.make(spec.problem, runs=spec.runs, seed=seeds, backend=backend, **spec.problem_params)
    opt = runners.make(spec.optimizer, **{k: np.asarray(v) if isinstance(v, list) else v for k, v in spec.hparams.items()})
    res = runners.run(problem, opt, steps=spec.steps, seed=seeds, log_points=spec.log_points,
                      divergence_factor=spec.divergence_factor, target=spec.target)
    wall = time.perf_counter() - t0
    run_ids = np.asarray(spec.run_ids, np.int64)
    runs = pd.DataFrame({"run_id": run_ids, "status": res.status, "diverged_step": res.diverged_step})
    for k, v in res.final.items():
        runs[f"final_{k}" if not k.startswith(("best_", "steps_")) else k] = v
    runs["oracle_calls"] = res.oracle_calls_per_step * spec.steps
    for k, v in problem.constants().items():
        runs[f"c_{k}"] = v
    runs["job"] = spec.key
    runs["job_wall_s"] = wall
    k, b = len(res.steps), spec.runs
    curves = pd.DataFrame({"run_id": np.tile(run_ids, k), "step": np.repeat(res.steps, b)})
    for name, arr in res.curves.items():
        curves[name] = arr.reshape(-1)
    return {"runs": runs, "curves": curves}
