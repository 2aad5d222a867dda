"""The criterion ``min_grad_nuc`` (the every-step accumulator of ||grad f||_*) tunes and refines
learning rates: GD on a 2 x 1 quadratic, where ||G||_* = ||G||_F and the gradient after t steps
from X0 = 0 is the closed form -lambda_i (1 - eta lambda_i)^t x*_i, so min_{t < T} ||grad f(X_t)||_*
is minimized over eta by brute force; refinement must land within its resolution of that eta."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import problems
from lab.errors import ConfigError
from problems.backend import get_backend

sys.path.insert(0, str(Path(__file__).parent))
from test_refine import QUAD, SEEDS, T, gd_config, sweep  # noqa: E402


def brute_force_min_grad_optimum() -> float:
    p = problems.make(
        "quadratic", runs=len(SEEDS), seed=np.array(SEEDS), backend=get_backend("numpy", "float64"), **QUAD
    )
    xs = p.xstar_host.reshape(len(SEEDS), 2)
    lam = np.array(
        [p.op.apply(np.eye(2)[None, i].reshape(1, 2, 1).repeat(len(SEEDS), 0))[0].ravel()[i] for i in range(2)]
    )
    eta = 10 ** np.arange(-1.0, 0.5, 1e-4)
    t = np.arange(T)
    g = lam * (1 - eta[:, None, None, None] * lam) ** t[None, :, None, None] * xs[None, None]  # (eta, t, seed, i)
    best = np.sqrt((g**2).sum(-1)).min(axis=1)  # (eta, seed)
    return float(eta[np.argmin(np.median(best, axis=1))])


def test_refinement_on_min_grad_nuc_lands_on_the_brute_force_optimum(tmp_path):
    res = 1 / 16
    out = tmp_path / "r"
    cfg = gd_config(
        {"logspace": [-1.0, 0.5, 4]}, {"resolution": res, "criterion": "min_grad_nuc"}, accumulate=["grad_nuc"]
    )
    assert sweep(cfg, out)["complete"]
    runs = pd.read_csv(out / "runs.csv")
    per_lr = runs.groupby("h_lr")["min_grad_nuc"].median()
    best = brute_force_min_grad_optimum()
    assert abs(np.log10(per_lr.idxmin() / best)) <= res + 1e-9
    assert runs["refine_round"].max() >= 1


def test_min_grad_nuc_needs_its_accumulator():
    with pytest.raises(ConfigError, match=r"refine.criterion: got 'min_grad_nuc' without accumulate"):
        gd_config([0.1, 1.0], {"criterion": "min_grad_nuc"})
    with pytest.raises(ConfigError, match=r"analysis.criterion: got 'min_grad_nuc'"):
        gd_config([0.1, 1.0], analysis={"criterion": "min_grad_nuc"})
    gd_config([0.1, 1.0], analysis={"criterion": "min_grad_nuc"}, accumulate=["grad_nuc"])  # accepted
