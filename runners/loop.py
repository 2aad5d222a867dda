"""The run loop: T steps of one optimizer on a batch of B problems, metrics at log-spaced steps,
divergent runs frozen and flagged while the others go on.

Speed (docs/benchmarks.md): on the host (NumPy, torch on the CPU) the batch is split into ``lanes``
sub-batches that run in threads, each with single-threaded BLAS and no synchronization until the end
(both libraries release the GIL inside matmuls and elementwise kernels); this uses every core on
small matrices, where BLAS itself would run single-threaded. Runs are independent and a sub-batch is
rebuilt from its runs' seeds and parameters, so the split changes no value. Between logged steps the
loop checks the parameters for non-finite values on the device and, on a GPU, never waits for it.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from problems.backend import RunRNG, all_finite, limit_blas_threads

from . import accumulate as _acc
from . import orth as _orth

METRICS = ("gap", "grad_fro", "grad_nuc", "grad_op", "dist_fro")
# Logged (curves.csv) only, not a final_ column of runs.csv: the numerical rank of the exact
# gradient, the number of singular values > RANK_RTOL x the largest (0 for a zero gradient, NaN
# for a non-finite one; the max over layers). analysis.trend.numerical_rank is the same count.
LOGGED_ONLY = ("grad_rank",)
# Also in curves.csv only: the realized orthogonality error of the step's update
# (runners.orth.orth_error; NaN at step 0, for optimizers that do not orthogonalize, and for runs
# frozen at that step). The loop records the step's orthogonalizations at logged steps only.
ORTH_ERR = "orth_err"
RANK_RTOL = 1e-6
OK, DIVERGED = "ok", "diverged"

PROGRESS_EVERY = 0.5  # seconds between progress callbacks (checked every 8th step and at logged steps)

# Wall seconds spent inside run() and its calls, accumulated per process (the benchmark's
# "array math" share of a sweep; docs/benchmarks.md).
TIMER = {"calls": 0, "seconds": 0.0}
_TIMER_LOCK = threading.Lock()


def log_steps(steps: int, points: int) -> np.ndarray:
    """0 plus about ``points`` log-spaced steps in [1, steps], always including ``steps``."""
    grid = np.unique(np.round(np.geomspace(1, steps, max(points, 2))).astype(np.int64))
    return np.concatenate([[0], grid])


class Oracle:
    """Gradients under one draw xi: ``oracle(params)`` at any point, the same draw each time."""

    def __init__(self, problem, xi):
        self.problem, self.xi, self.xp, self.calls = problem, xi, problem.xp, 0

    def __call__(self, params):
        self.calls += 1
        return self.problem.stoch_grad(params, self.xi)


@dataclass
class RunResult:
    """Host (NumPy) arrays: ``curves[metric]`` is (K, B) at ``steps`` (K,); ``final[metric]`` is
    (B,); ``status`` is 'ok' or 'diverged'; ``diverged_step`` is -1 for runs that did not."""

    steps: np.ndarray
    curves: dict
    final: dict
    status: np.ndarray
    diverged_step: np.ndarray
    params: tuple
    oracle_calls_per_step: float
    extra: dict = field(default_factory=dict)


def _numerical_rank(s, xp, rtol: float = RANK_RTOL):
    """(B,) float64: the number of entries of each row of ``s`` (singular values, descending,
    (B, k)) above ``rtol`` x the row's largest; 0 for a zero row, NaN for a non-finite one."""
    top = s[..., :1]
    count = xp.astype(((s > rtol * top) & (top > 0)).sum(axis=-1), xp.float64)
    return xp.where(xp.isfinite(top[..., 0]), count, xp.nan)


def _measure(problem, params, xstar, xp, names=METRICS) -> dict:
    """Device values (problem dtype, (B,)) of the standard metrics ``names`` at ``params``: the
    one definition of each, shared by the logged metrics and the every-step accumulators."""
    need_grad = any(k.startswith("grad") for k in names)
    grads = problem.grad(params) if need_grad else None
    sv = [_orth.singular_values(g) for g in grads] if {"grad_nuc", "grad_op", "grad_rank"} & set(names) else None
    make = {
        "gap": lambda: problem.gap(params),
        "grad_fro": lambda: xp.sqrt(sum((g * g).sum(axis=(1, 2)) for g in grads)),
        "grad_nuc": lambda: sum(s.sum(axis=-1) for s in sv),
        "grad_op": lambda: xp.max(xp.stack([s[..., 0] for s in sv]), axis=0),
        "grad_rank": lambda: xp.max(xp.stack([_numerical_rank(s, xp) for s in sv]), axis=0),
        "dist_fro": lambda: xp.sqrt(sum(((x - xs) ** 2).sum(axis=(1, 2)) for x, xs in zip(params, xstar))),
    }
    return {k: make[k]() for k in names}


def _metrics(problem, params, xstar, backend):
    out = _measure(problem, params, xstar, backend.xp, METRICS + LOGGED_ONLY)
    out.update(problem.extra_metrics(params))
    return {k: backend.to_host(v).astype(np.float64) for k, v in out.items()}


def _finite_runs(params, xp):
    """(B,) device bool: every entry of every layer of the run is finite (exact; backend.all_finite:
    on NumPy isfinite + all, 15 us at 32 x 64 x 64, faster than a per-run sum, 21 us)."""
    ok = None
    for x in params:
        f = all_finite(x, (1, 2))
        ok = f if ok is None else ok & f
    return ok


def run(
    problem,
    optimizer,
    steps: int,
    seed=0,
    log_points: int = 30,
    divergence_factor: float = 1e6,
    target: float = 1e-2,
    lanes: int | None = None,
    accumulate=(),
    progress=None,
) -> RunResult:
    """Run ``optimizer`` for ``steps`` steps on every run of ``problem``.

    ``seed`` (scalar or (B,)) keys each run's oracle stream (:class:`problems.backend.RunRNG`).
    A run whose parameters turn non-finite (checked every step) or whose gap exceeds
    ``divergence_factor`` x its initial gap (checked at logged steps) is frozen at its last good
    parameters and flagged 'diverged'. ``steps_to_target`` is the first logged step whose gap is
    at most ``target`` x the initial gap (inf if none).

    ``lanes``: sub-batches run in parallel threads on the host (None: ``$MUONLAB_LANES`` if set,
    else one per thread of the array library, ``Backend.threads``, at most B, and 1 where a lane's
    largest layer would hold fewer than ``Backend.lane_min_elements`` entries; 1: the whole batch in
    this thread). The result does not
    depend on it.

    ``accumulate``: quantities (of :data:`runners.accumulate.ACCUMULABLE`) whose running minimum
    and mean over EVERY iterate are kept (:mod:`runners.accumulate`): curves and final values
    ``min_<q>`` / ``avg_<q>``. Costs the exact loss and gradient at every step (reused at logged
    steps); default none, and then nothing else changes.

    ``progress``: optional ``fn(run_steps)``, called from each lane's thread about every
    :data:`PROGRESS_EVERY` seconds with the run-steps done since its last call (a progress bar's
    feed; the calls of one run add up to B x steps). It changes no value.
    """
    if int(steps) < 1:
        raise ValueError(f"steps: got {steps!r}; allowed: an integer >= 1")
    accumulate = _acc.check(accumulate)
    t0 = time.perf_counter()
    B = problem.runs
    seeds = np.broadcast_to(np.asarray(seed, np.int64), (B,))
    if lanes is None:
        lanes = int(os.environ.get("MUONLAB_LANES", 0)) or problem.backend.threads
        size = max(m * n for m, n in problem.layer_shapes)
        if lanes > 1 and B // lanes * size < problem.backend.lane_min_elements:
            lanes = 1
    lanes = max(1, min(int(lanes), B))
    kw = dict(
        steps=int(steps),
        log_points=log_points,
        divergence_factor=divergence_factor,
        target=target,
        accumulate=accumulate,
        progress=progress,
    )
    try:
        if lanes == 1:
            return _run_batch(problem, optimizer, seeds, **kw)
        parts = np.array_split(np.arange(B), lanes)
        with limit_blas_threads(1), ThreadPoolExecutor(lanes, thread_name_prefix="muonlab-lane") as pool:
            futures = [
                pool.submit(
                    _run_batch, _take_problem(problem, idx), _take_optimizer(optimizer, idx, B), seeds[idx], **kw
                )
                for idx in parts
            ]
            return _concat([f.result() for f in futures])
    finally:
        with _TIMER_LOCK:
            TIMER["calls"] += 1
            TIMER["seconds"] += time.perf_counter() - t0


def _take_problem(problem, idx):
    """The sub-batch ``idx`` of ``problem``: its own ``take`` if it has one, else the same kind
    rebuilt from those runs' seeds and parameters (a run is a function of its seed and
    parameters, docs/design.md)."""
    if hasattr(problem, "take"):
        return problem.take(idx)
    B = problem.runs
    params = {k: v[idx] if isinstance(v, np.ndarray) and v.shape == (B,) else v for k, v in problem.params.items()}
    return type(problem)(runs=len(idx), seed=problem.seeds[idx], backend=problem.backend, **params)


def _take_optimizer(optimizer, idx, B):
    hp = {k: v[idx] if isinstance(v, np.ndarray) and v.shape == (B,) else v for k, v in optimizer.hp.items()}
    return dataclasses.replace(optimizer, hp=hp)


def _concat(parts: list[RunResult]) -> RunResult:
    first = parts[0]
    return RunResult(
        steps=first.steps,
        curves={k: np.concatenate([p.curves[k] for p in parts], axis=1) for k in first.curves},
        final={k: np.concatenate([p.final[k] for p in parts]) for k in first.final},
        status=np.concatenate([p.status for p in parts]),
        diverged_step=np.concatenate([p.diverged_step for p in parts]),
        params=tuple(np.concatenate(layer) for layer in zip(*(p.params for p in parts))),
        oracle_calls_per_step=first.oracle_calls_per_step,
        extra={"lanes": len(parts)},
    )


def _run_batch(
    problem,
    optimizer,
    seeds,
    steps,
    log_points,
    divergence_factor,
    target,
    accumulate=(),
    sync_every_step: bool | None = None,
    progress=None,
) -> RunResult:
    """The loop on one batch. ``sync_every_step`` (default: on the host, where it costs nothing)
    brings the per-run finiteness flags to the host each step; otherwise they stay on the device
    and frozen runs are restored with ``where`` every step, the host waiting only at logged steps.

    Accumulators: before step t the quantities at X_{t-1} (the current ``params``) are added for
    the runs still active; where X_{t-1} was logged, its logged metrics are reused."""
    backend, xp, B = problem.backend, problem.xp, problem.runs
    if sync_every_step is None:
        sync_every_step = backend.on_host
    rng = RunRNG(seeds, backend, stream=1)
    params = problem.init(RunRNG(seeds, backend, stream=2))
    hp = optimizer.bind(B, backend)
    state = optimizer.init(params, hp, xp)
    xstar, _ = problem.optimum()
    logged = log_steps(int(steps), log_points)
    logged_set = set(logged.tolist())
    rows = []
    active = np.ones(B, bool)
    diverged_step = np.full(B, -1, np.int64)
    dev = backend.device
    active_dev = None if sync_every_step else xp.ones((B,), dtype=xp.bool, device=dev)
    step_dev = None if sync_every_step else xp.full((B,), -1, dtype=xp.int64, device=dev)
    calls = 0
    acc = _acc.Accumulators(accumulate, B, xp, dev) if accumulate else None
    f64 = xp.float64
    told, t_told = 0, time.perf_counter()  # steps reported to ``progress``, and when

    with np.errstate(all="ignore"):
        m = {**_metrics(problem, params, xstar, backend), ORTH_ERR: np.full(B, np.nan)}
        gap0 = m["gap"]
        rows.append(m if acc is None else {**m, **acc.snapshot(0, diverged_step, backend)})
        known = m  # host metrics of the current params, when it was logged
        for t in range(1, int(steps) + 1):
            if acc is not None:
                q = (
                    {k: backend.asarray(known[k], dtype=f64) for k in acc.names}
                    if known is not None
                    else _measure(problem, params, xstar, xp, acc.names)
                )
                acc.add(q, xp.asarray(active, device=dev) if sync_every_step else active_dev)
            known = None
            oracle = Oracle(problem, problem.sample(rng))
            is_logged = t in logged_set
            if is_logged:
                with _orth.probe() as probed:
                    new, state = optimizer.step(params, state, oracle, t, hp)
            else:
                new, state = optimizer.step(params, state, oracle, t, hp)
            calls += oracle.calls
            if progress is not None and (is_logged or not t & 7) and time.perf_counter() - t_told >= PROGRESS_EVERY:
                progress(B * (t - told))
                told, t_told = t, time.perf_counter()
            if not sync_every_step and not is_logged:
                fin = _finite_runs(new, xp)
                step_dev = xp.where(active_dev & ~fin, t, step_dev)
                active_dev &= fin
                keep = active_dev[:, None, None]
                params = tuple(xp.where(keep, x1, x0) for x1, x0 in zip(new, params))
                continue
            if not sync_every_step:  # a logged step: bring the device-side flags to the host
                active = backend.to_host(active_dev).copy()
                diverged_step = backend.to_host(step_dev).copy()
                if not active.all():  # runs frozen since the last logged step stay frozen
                    keep = active_dev[:, None, None]
                    new = tuple(xp.where(keep, x1, x0) for x1, x0 in zip(new, params))
            bad = ~backend.to_host(_finite_runs(new, xp))
            if is_logged:
                m = _metrics(problem, new, xstar, backend)
                bad |= ~np.isfinite(m["gap"]) | (m["gap"] > divergence_factor * gap0)
            newly = bad & active
            if newly.any():
                active &= ~newly
                diverged_step[newly] = t
            if not active.all():
                keep = xp.asarray(active, device=dev)[:, None, None]
                new = tuple(xp.where(keep, x1, x0) for x1, x0 in zip(new, params))
                if is_logged:
                    m = _metrics(problem, new, xstar, backend)
            if not sync_every_step:
                active_dev = xp.asarray(active, device=dev)
                step_dev = xp.asarray(diverged_step, device=dev)
            params = new
            if is_logged:
                m[ORTH_ERR] = np.where(active, backend.to_host(_orth.probe_error(probed, B, xp)), np.nan)
                known = m
                rows.append(m if acc is None else {**m, **acc.snapshot(t, diverged_step, backend)})

    if progress is not None and told < int(steps):
        progress(B * (int(steps) - told))
    curves = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    gaps = curves["gap"]
    hit = gaps <= target * gap0[None, :]
    first = np.where(hit.any(axis=0), logged[np.argmax(hit, axis=0)], np.inf)
    final = {k: curves[k][-1] for k in METRICS}
    final.update({k: curves[k][-1] for k in (_acc.columns(accumulate) if acc is not None else ())})
    final["best_gap"] = gaps.min(axis=0)
    final["steps_to_target"] = first.astype(np.float64)
    return RunResult(
        steps=logged,
        curves=curves,
        final=final,
        status=np.where(active, OK, DIVERGED),
        diverged_step=diverged_step,
        params=tuple(backend.to_host(x) for x in params),
        oracle_calls_per_step=calls / int(steps),
        extra={"lanes": 1},
    )
