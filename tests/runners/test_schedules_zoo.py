"""Schedule values at hand-computed points (runners.schedules; docs/optimizers.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import runners
from problems.backend import get_backend

BK = get_backend("numpy", "float64")


def lr_at(steps, **hp):
    opt = runners.make("muon", lr=2.0, **hp)
    bound = opt.bind(1, BK)
    sched = bound.get("_schedule")
    return [float(np.asarray(sched.apply(bound, t, np)["lr"] if sched else bound["lr"]).ravel()[0]) for t in steps]


def test_lr_shapes():
    assert lr_at([1, 4, 100]) == [2.0, 2.0, 2.0]
    assert lr_at([1, 4, 100], lr_schedule="power", lr_p=0.5) == pytest.approx([2.0, 1.0, 0.2])
    # cosine over horizon 10 after 0 warmup: s = t / 10
    assert lr_at([0 + 5, 10, 20], lr_schedule="cosine", horizon=10) == pytest.approx([1.0, 0.0, 0.0], abs=1e-12)
    assert lr_at([5], lr_schedule="cosine", horizon=10, lr_final=0.5) == pytest.approx([1.5])
    assert lr_at([5, 10], lr_schedule="linear", horizon=10, lr_final=0.2) == pytest.approx([2 * 0.6, 2 * 0.2])
    # warmup 4: t/4 ramp, then the decay measured from the end of warmup
    assert lr_at([1, 2, 4], lr_schedule="linear", horizon=14, warmup=4) == pytest.approx([0.5, 1.0, 2.0])
    assert lr_at([9], lr_schedule="linear", horizon=14, warmup=4) == pytest.approx([1.0])
    assert lr_at([1, 8], warmup=4) == pytest.approx([0.5, 2.0])
    c = 0.5 * (1 + math.cos(math.pi * 0.25))
    assert lr_at([3], lr_schedule="cosine", horizon=6, warmup=2) == pytest.approx([2 * c])


def test_beta_power_schedule():
    opt = runners.make("muon", beta=np.array([0.0, 0.9]), beta_q=np.array([2 / 3, 0.0]))
    bound = opt.bind(2, BK)
    b8 = bound["_schedule"].apply(bound, 8, np)["beta"].ravel()
    np.testing.assert_allclose(b8, [1 - 8 ** (-2 / 3), 0.9], rtol=1e-14)
    assert b8[1] == 0.9  # q = 0 keeps beta exactly
