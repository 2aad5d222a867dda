"""Every-step accumulators: the quantities convergence theorems bound, over EVERY iterate, not
only the logged ones (docs/results.md, "Every-step accumulators").

Theorems about Muon-type methods bound a best iterate or an ergodic average, e.g. (arXiv
2509.15816, seed 000; PAPERS.md) Muon's "ergodic" rate bounds (1/T) sum_{t=1}^T E||grad f(X_t)||
and the PL best-iterate rates bound min_t E sqrt(f(X_t) - f*). The paper's iterates start at
X_1; the lab's start at X_0, so its t-th iterate is X_{t-1} and the paper's average over
t = 1..T is the lab's average over X_0..X_{T-1}. Hence, at step t (after t optimizer steps):

    min_<q>(t) = min_{s=0..t-1} q(X_s),      avg_<q>(t) = (1/t) sum_{s=0..t-1} q(X_s),

the t iterates at which the method took its t gradients (step 0: no iterate yet, NaN). Both use
the same iterates. A run frozen as diverged at step d (its parameters stay X_{d-1}) accumulates
X_0..X_{d-1} and stops there: its min and avg are constant after d.

Quantities (:data:`ACCUMULABLE`, the names a sweep lists in ``accumulate``): ``gap``
(f - f*; also gives ``sqrt_gap`` = sqrt(max(gap, 0))), ``grad_fro`` (Frobenius norm of the exact
gradient over all layers) and ``grad_nuc`` (nuclear norm, summed over layers; an eigenvalue
decomposition per layer per step). They are computed by the same code as the logged metrics of
curves.csv, so ``min_gap`` at step t is <= every logged ``gap`` at steps < t, exactly.
Sums are kept in float64.
"""

from __future__ import annotations

import numpy as np

ACCUMULABLE = ("gap", "grad_fro", "grad_nuc")
_KEYS = {"gap": ("gap", "sqrt_gap"), "grad_fro": ("grad_fro",), "grad_nuc": ("grad_nuc",)}


def check(names) -> tuple[str, ...]:
    """The accumulated quantities as a tuple in :data:`ACCUMULABLE` order (an error names the
    first unknown or repeated one)."""
    names = tuple(names or ())
    for v in names:
        if v not in ACCUMULABLE:
            raise ValueError(f"accumulate: got {v!r}; allowed: {', '.join(ACCUMULABLE)}")
    if len(set(names)) != len(names):
        raise ValueError(f"accumulate: got {list(names)!r}; allowed: each of {', '.join(ACCUMULABLE)} at most once")
    return tuple(n for n in ACCUMULABLE if n in names)


def columns(names) -> list[str]:
    """The column names the quantities ``names`` produce, in output order."""
    return [f"{s}_{k}" for n in check(names) for k in _KEYS[n] for s in ("min", "avg")]


class Accumulators:
    """Running minimum and sum per run of the quantities ``names`` (device arrays, float64)."""

    def __init__(self, names, runs: int, xp, device="cpu"):
        self.names = check(names)
        self.keys = [k for n in self.names for k in _KEYS[n]]
        self.xp = xp
        self.sum = {k: xp.zeros((runs,), dtype=xp.float64, device=device) for k in self.keys}
        self.min = {k: xp.full((runs,), np.inf, dtype=xp.float64, device=device) for k in self.keys}

    def add(self, q: dict, mask) -> None:
        """Accumulate one iterate: ``q[name]`` (B,) device values of every accumulated quantity
        at it; ``mask`` (B,) device bool: the runs for which it counts (the active ones)."""
        xp = self.xp
        vals = {n: xp.astype(q[n], xp.float64) for n in self.names}
        if "gap" in vals:
            vals["sqrt_gap"] = xp.sqrt(xp.maximum(vals["gap"], 0.0))
        for k in self.keys:
            self.sum[k] = self.sum[k] + xp.where(mask, vals[k], 0.0)
            self.min[k] = xp.where(mask, xp.minimum(self.min[k], vals[k]), self.min[k])

    def snapshot(self, t: int, diverged_step: np.ndarray, backend) -> dict[str, np.ndarray]:
        """Host columns at step ``t``: min and mean over X_0..X_{t-1} (diverged runs: over
        X_0..X_{d-1}); NaN at t = 0."""
        count = np.where(diverged_step >= 0, np.minimum(diverged_step, t), t).astype(np.float64)
        empty = count == 0
        out = {}
        for k in self.keys:
            mn = backend.to_host(self.min[k]).astype(np.float64)
            out[f"min_{k}"] = np.where(empty, np.nan, mn)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"avg_{k}"] = np.where(empty, np.nan, backend.to_host(self.sum[k]).astype(np.float64) / count)
        return {c: out[c] for c in columns(self.names)}
