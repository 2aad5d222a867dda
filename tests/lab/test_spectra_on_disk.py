"""The lab writes each instance's spectra (spectra.csv) and constants (runs.csv c_*), and they
are the problem's own: checked against the problem object and against an independent closed
form (diagonal_abs' eps floor from the gap at X0 = 0, which is linear in eps)."""

import numpy as np
import pandas as pd

import problems
from problems.backend import get_backend

TINY = {
    "name": "spectra",
    "steps": 4,
    "log_points": 2,
    "seeds": [0, 3],
    "dtype": "float64",
    "problem": {"kind": "power_law_lsq", "fixed": {"m": 3, "n": 5}, "grid": {"alpha": [0.5, 1.5]}},
    "optimizers": [{"name": "gd", "lr": [0.01, 0.1]}, {"name": "muon", "lr": [0.01]}],
}


def test_spectra_csv_holds_each_instance_once(tmp_path):
    from lab.api import run_sweep
    from lab.config import parse_config

    run_sweep(parse_config(TINY), out_dir=tmp_path, progress=False)
    spec = pd.read_csv(tmp_path / "spectra.csv")
    assert list(spec.columns) == ["cell_id", "seed", "name", "index", "value"]
    assert not spec.duplicated(["cell_id", "seed", "name", "index"]).any()
    runs = pd.read_csv(tmp_path / "runs.csv")
    bk = get_backend("numpy", "float64")
    for (cell, seed), g in spec.groupby(["cell_id", "seed"]):
        alpha = runs.loc[runs.cell_id == cell, "p_alpha"].iloc[0]
        pb = problems.make("power_law_lsq", runs=1, seed=np.array([seed]), backend=bk, m=3, n=5, alpha=alpha)
        for name, arr in pb.spectra().items():
            got = g[g.name == name].sort_values("index")["value"].to_numpy()
            np.testing.assert_array_equal(got, arr[0])
        # power_law_lsq's covariance spectrum is lambda_j = j^-alpha (problems/power_law_lsq.py)
        np.testing.assert_allclose(
            g[g.name == "cov"].sort_values("index")["value"], np.arange(1, 6) ** -alpha, rtol=1e-12
        )
    assert set(zip(spec.cell_id, spec.seed)) == set(zip(runs.cell_id, runs.seed))


def test_diagonal_abs_eps_floor_is_the_eps_slope_of_the_initial_gap():
    bk = get_backend("numpy", "float64")
    seeds = np.array([0, 1, 2])
    gaps, floors = {}, {}
    for eps in (0.02, 0.3):
        pb = problems.make("diagonal_abs", runs=3, seed=seeds, backend=bk, m=7, n=9, coupled=True, eps=eps)
        gaps[eps] = np.asarray(pb.gap(pb.init(None)))
        floors[eps] = pb.constants()["eps_floor"]
    slope = (gaps[0.3] - gaps[0.02]) / (
        0.3 - 0.02
    )  # gap(X0 = 0) = sum |d_2j - d_2j+1| + |d_k| + eps sum |d_2j + d_2j+1|
    np.testing.assert_allclose(floors[0.02], 0.02 * slope, rtol=1e-10)
    np.testing.assert_allclose(floors[0.3], 0.3 * slope, rtol=1e-10)
    pb = problems.make("diagonal_abs", runs=3, seed=seeds, backend=bk, m=4, n=4, coupled=False)
    assert (pb.constants()["eps_floor"] == 0).all()
