"""Adaptive lr refinement ([refine], lab/refine.py) against independent truth: GD on a 2 x 1
quadratic, whose final gap after T steps is the closed form 1/2 sum_i lambda_i (1 - eta
lambda_i)^(2T) x*_i^2 (from X0 = 0), minimized by brute force on a fine eta grid."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import problems
from lab.api import run_sweep
from lab.config import parse_config
from lab.errors import ConfigError
from problems.backend import get_backend

sys.path.insert(0, str(Path(__file__).parent))
from sweep_helpers import assert_same_grids  # noqa: E402

T = 20
SEEDS = [0, 1, 2]
QUAD = {"m": 2, "n": 1, "hessian": "kronecker", "basis": "aligned", "kappa": 10.0}


def gd_config(lr, refine=None, **over):
    cfg = {
        "name": "refine_gd",
        "steps": T,
        "log_points": 6,
        "seeds": SEEDS,
        "dtype": "float64",
        "problem": {"kind": "quadratic", "fixed": dict(QUAD)},
        "optimizers": [{"name": "gd", "lr": lr}],
    }
    if refine is not None:
        cfg["refine"] = refine
    cfg.update(over)
    return parse_config(cfg)


def sweep(cfg, out):
    logging.disable(logging.WARNING)
    try:
        return run_sweep(cfg, out_dir=out, progress=False)
    finally:
        logging.disable(logging.NOTSET)


def brute_force_optimum() -> float:
    """argmin over eta (1e-4-decade grid) of the median over seeds of the closed-form final gap."""
    p = problems.make(
        "quadratic", runs=len(SEEDS), seed=np.array(SEEDS), backend=get_backend("numpy", "float64"), **QUAD
    )
    xs = p.xstar_host.reshape(len(SEEDS), 2)
    lam = np.array(
        [p.op.apply(np.eye(2)[None, i].reshape(1, 2, 1).repeat(len(SEEDS), 0))[0].ravel()[i] for i in range(2)]
    )
    eta = 10 ** np.arange(-1.0, 0.5, 1e-4)
    gaps = 0.5 * ((lam * (1 - eta[:, None, None] * lam) ** (2 * T)) * xs[None] ** 2).sum(-1)  # (eta, seed)
    return float(eta[np.argmin(np.median(gaps, axis=1))])


def test_refinement_lands_within_resolution_of_the_brute_force_optimum(tmp_path):
    res = 1 / 16
    out = tmp_path / "r"
    r = sweep(gd_config({"logspace": [-1.0, 0.5, 4]}, {"resolution": res}), out)
    assert r["complete"]
    s = pd.read_csv(out / "summary.csv").iloc[0]
    best = brute_force_optimum()
    assert abs(np.log10(s["h_lr"] / best)) <= res + 1e-9
    assert s["lr_resolution"] <= res + 1e-9 and not s["lr_at_edge"]
    runs = pd.read_csv(out / "runs.csv")
    assert runs["refine_round"].max() >= 1 and (runs[runs["refine_round"] == 0]["h_lr"].nunique() == 4)
    assert list(runs["run_id"]) == list(range(len(runs)))
    # every refined lr was run on every seed (common random numbers across lrs)
    assert (runs.groupby("h_lr")["seed"].apply(lambda s: sorted(s) == SEEDS)).all()
    # the coarse grid alone is further from the optimum than the refined choice
    coarse = runs[runs["refine_round"] == 0].groupby("h_lr")["final_gap"].median().idxmin()
    assert abs(np.log10(coarse / best)) > res


def test_optimum_at_the_edge_extends_the_grid_and_is_flagged_when_it_stays(tmp_path):
    lr = [1e-3, 10**-2.5, 1e-2]  # the optimum (~1.7) is far above the grid
    short = sweep(gd_config(lr, {"resolution": 0.25, "max_rounds": 2}), tmp_path / "short")
    s = pd.read_csv(tmp_path / "short" / "summary.csv").iloc[0]
    assert short["complete"] and s["lr_at_edge"] and s["lr_edge"] == "high"
    assert np.isclose(s["h_lr"], 1e-1)  # two steps of half a decade beyond 1e-2
    off = sweep(gd_config(lr, {"resolution": 0.25, "extend_edges": False}), tmp_path / "off")
    s_off = pd.read_csv(tmp_path / "off" / "summary.csv").iloc[0]
    assert s_off["lr_at_edge"] and s_off["lr_max"] == pytest.approx(1e-2) and off["n_runs"] > 9  # inner midpoint added
    long = sweep(gd_config(lr, {"resolution": 0.25, "max_rounds": 12}), tmp_path / "long")
    s_long = pd.read_csv(tmp_path / "long" / "summary.csv").iloc[0]
    assert long["complete"] and not s_long["lr_at_edge"] and s_long["lr_resolution"] <= 0.25 + 1e-9
    assert abs(np.log10(s_long["h_lr"] / brute_force_optimum())) <= 0.25


NOISY = {"m": 4, "n": 4, "hessian": "kronecker", "basis": "rotated", "kappa": 10.0, "noise": "gaussian", "sigma": 0.3}


def two_methods(res):
    cfg = {
        "name": "refine_pair",
        "steps": 200,
        "log_points": 6,
        "seeds": SEEDS,
        "dtype": "float64",
        "problem": {"kind": "quadratic", "fixed": NOISY},
        "optimizers": [
            {"name": "gd", "lr": {"logspace": [-2.0, 0.5, 6]}},
            {"name": "signsgd", "lr": {"logspace": [-4.0, -0.5, 8]}},
        ],
        "refine": {"resolution": res},
    }
    return parse_config(cfg)


def log_ratio(runs: pd.DataFrame) -> float:
    from analysis.tune import tune

    s = tune(runs).set_index("optimizer")["median"]
    return float(np.log10(s["signsgd"] / s["gd"]))


def test_refined_ratio_stops_moving_and_resume_gives_identical_results(tmp_path):
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    sweep(two_methods(1 / 32), out_a)
    sweep(two_methods(1 / 128), out_b)
    ra, rb = pd.read_csv(out_a / "runs.csv"), pd.read_csv(out_b / "runs.csv")
    base = log_ratio(rb[rb["refine_round"] == 0])
    fine_a, fine_b = log_ratio(ra), log_ratio(rb)
    assert abs(fine_a - fine_b) < 0.01 < abs(base - fine_b)
    # resume: drop the assembled grids, the parts of the last rounds and one of the first round
    # (as a kill in the middle of round 1 leaves it), then re-run: the same grids
    out_c = tmp_path / "c"
    shutil.copytree(out_a, out_c)
    for name in ("runs", "curves", "summary", "phase"):
        (out_c / f"{name}.csv").unlink()
    parts = sorted((out_c / "parts").glob("r*.runs.csv"))
    assert len({p.name[:3] for p in parts}) >= 2
    for p in parts:
        if p.name[:3] != "r01":
            p.unlink()
    next(iter(sorted((out_c / "parts").glob("r01-*.runs.csv")))).unlink()
    r = sweep(two_methods(1 / 32), out_c)
    assert r["complete"] and 0 < r["jobs_run_now"] < r["n_jobs"]
    assert_same_grids(out_a, out_c)


def test_refine_config_errors():
    with pytest.raises(ConfigError, match=r"^refine\.methods\.0: got 'adam'; allowed: gd$"):
        gd_config([0.1, 1.0], {"methods": ["adam"]})
    with pytest.raises(ConfigError, match=r"^refine\.resolution: "):
        gd_config([0.1, 1.0], {"resolution": 0.0})
    with pytest.raises(ConfigError, match=r"^refine\.colour: unknown field; allowed: resolution, methods"):
        gd_config([0.1, 1.0], {"colour": 1})
    # no [refine] section: the config hash is the one of a config that never heard of refinement
    assert "refine" not in gd_config([0.1, 1.0]).model_dump(mode="json")
