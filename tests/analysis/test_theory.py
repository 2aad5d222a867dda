"""Theory predictions on constructed tables; no winner prediction from A (it could not fail)."""
import numpy as np
import pandas as pd

from analysis import theory
from analysis.theory import MODE_THEORIES, mode_exponents, reference_slope, shen_advantage


def test_shen_advantage():
    runs = pd.DataFrame({"cell_id": [0, 0, 1, 2], "p_m": 32, "p_n": 64, "c_L": [1.0, 1.0, 1.0, 2.0],
                         "c_L_star": [32.0, 32.0, 4.0, 80.0]})
    adv = shen_advantage(runs).set_index("cell_id")
    assert np.allclose(adv["theory_advantage"], [1.0, 8.0, 0.8])  # r L / L_star with r = min(m, n) = 32


def test_no_winner_prediction_from_a():
    assert not hasattr(theory, "predict_winner") and not hasattr(theory, "agreement")


def test_shen_advantage_range_from_bounds():
    runs = pd.DataFrame({"cell_id": [0, 1], "p_m": 4, "p_n": 4, "c_L": 1.0,
                         "c_L_star_low": [1.0, 2.0], "c_L_star_high": [8.0, 3.0]})
    adv = shen_advantage(runs)
    assert np.allclose(adv["theory_advantage_low"], [0.5, 4 / 3]) and np.allclose(adv["theory_advantage_high"], [4.0, 2.0])
    assert shen_advantage(runs.drop(columns=["c_L_star_low"])).empty


def test_reference_slopes_follow_the_papers():
    assert reference_slope("muon", "grad_nuc")[0] == -0.25
    assert np.isclose(reference_slope("muon_mvr2", "grad_fro")[0], -1 / 3)
    assert np.isclose(reference_slope("muon_mvr2", "gap")[0], -2 / 3)
    assert reference_slope("muon_mvr1", "gap")[0] == -0.5
    assert "unverified" in reference_slope("gluon_mvr1", "gap")[1]
    assert np.isnan(reference_slope("gd", "gap")[0])


def test_mode_exponent_recovers_square_root_preconditioning():
    alpha, modes = 1.5, np.arange(1, 17)
    lam = modes ** -alpha
    steps = np.unique(np.round(np.geomspace(1, 5000, 80))).astype(int)
    steps = np.concatenate([[0], steps])
    curves, chosen, runs = [], [], []
    for rid, (kind, q) in enumerate((("muon", 0.5), ("gd", 1.0))):
        err = np.exp(-0.05 * np.outer(steps, lam ** q))  # mode j decays at rate 0.05 lambda_j^q
        df = pd.DataFrame(err, columns=[f"mode_err_{j}" for j in modes])
        df.insert(0, "step", steps)
        df.insert(0, "run_id", rid)
        curves.append(df)
        chosen.append({"run_id": rid, "cell_id": 0, "optimizer": kind, "seed": 0, "status": "ok"})
        runs.append({"run_id": rid, "cell_id": 0, "seed": 0, "optimizer_kind": kind})
    spectra = pd.DataFrame({"cell_id": 0, "seed": 0, "name": "cov", "index": modes - 1, "value": lam})
    out = mode_exponents(pd.concat(curves), pd.DataFrame(chosen), pd.DataFrame(runs), spectra,
                         MODE_THEORIES["power_law_lsq"]).set_index("optimizer")
    assert abs(out.loc["muon", "slope"] - 0.5) < 0.05 and out.loc["muon", "predicted"] == 0.5
    assert abs(out.loc["gd", "slope"] - 1.0) < 0.05 and out.loc["gd", "predicted"] == 1.0
