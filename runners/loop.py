"""The run loop: T steps of one optimizer on a batch of B problems, metrics at log-spaced steps,
divergent runs frozen and flagged while the others go on."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lab.backend import RunRNG

METRICS = ("gap", "grad_fro", "grad_nuc", "grad_op", "dist_fro")
OK, DIVERGED = "ok", "diverged"


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


def _metrics(problem, params, xstar, backend):
    xp = backend.xp
    grads = problem.grad(params)
    sv = [xp.linalg.svd(g, compute_uv=False) for g in grads]
    out = {
        "gap": problem.gap(params),
        "grad_fro": xp.sqrt(sum((g * g).sum(axis=(1, 2)) for g in grads)),
        "grad_nuc": sum(s.sum(axis=-1) for s in sv),
        "grad_op": xp.max(xp.stack([s[..., 0] for s in sv]), axis=0),
        "dist_fro": xp.sqrt(sum(((x - xs) ** 2).sum(axis=(1, 2)) for x, xs in zip(params, xstar))),
    }
    out.update(problem.extra_metrics(params))
    return {k: backend.to_host(v).astype(np.float64) for k, v in out.items()}


def run(problem, optimizer, steps: int, seed=0, log_points: int = 30, divergence_factor: float = 1e6,
        target: float = 1e-2) -> RunResult:
    """Run ``optimizer`` for ``steps`` steps on every run of ``problem``.

    ``seed`` (scalar or (B,)) keys each run's oracle stream (:class:`lab.backend.RunRNG`).
    A run whose parameters turn non-finite (checked every step) or whose gap exceeds
    ``divergence_factor`` x its initial gap (checked at logged steps) is frozen at its last good
    parameters and flagged 'diverged'. ``steps_to_target`` is the first logged step whose gap is
    at most ``target`` x the initial gap (inf if none).
    """
    if int(steps) < 1:
        raise ValueError(f"steps: got {steps!r}; allowed: an integer >= 1")
    backend, xp, B = problem.backend, problem.xp, problem.runs
    seeds = np.broadcast_to(np.asarray(seed, np.int64), (B,))
    rng = RunRNG(seeds, backend, stream=1)
    params = problem.init(RunRNG(seeds, backend, stream=2))
    hp = optimizer.bind(B, backend)
    state = optimizer.init(params, hp, xp)
    xstar, _ = problem.optimum()
    logged = log_steps(int(steps), log_points)
    rows = []
    active = np.ones(B, bool)
    diverged_step = np.full(B, -1, np.int64)
    calls = 0

    with np.errstate(all="ignore"):
        m = _metrics(problem, params, xstar, backend)
        gap0 = m["gap"]
        rows.append(m)
        for t in range(1, int(steps) + 1):
            oracle = Oracle(problem, problem.sample(rng))
            new, state = optimizer.step(params, state, oracle, t, hp)
            calls += oracle.calls
            bad = ~np.all([backend.to_host(xp.isfinite(x).all(axis=(1, 2))) for x in new], axis=0)
            if t in logged:
                m = _metrics(problem, new, xstar, backend)
                bad |= ~np.isfinite(m["gap"]) | (m["gap"] > divergence_factor * gap0)
            newly = bad & active
            if newly.any():
                active &= ~newly
                diverged_step[newly] = t
            if not active.all():
                keep = xp.asarray(active)[:, None, None]
                new = tuple(xp.where(keep, x1, x0) for x1, x0 in zip(new, params))
                if t in logged:
                    m = _metrics(problem, new, xstar, backend)
            params = new
            if t in logged:
                rows.append(m)

    curves = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    gaps = curves["gap"]
    hit = gaps <= target * gap0[None, :]
    first = np.where(hit.any(axis=0), logged[np.argmax(hit, axis=0)], np.inf)
    final = {k: curves[k][-1] for k in METRICS}
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
    )
