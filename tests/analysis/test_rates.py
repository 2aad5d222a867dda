"""The rate fit recovers known exponents from synthetic curves; its CI comes from seeds."""

import numpy as np
import pandas as pd

from analysis.rates import fit_curves, fit_vs_horizon, rate_table


def _synthetic(exponents, seeds=6, noise=0.05, steps=None, seed=0):
    rng = np.random.default_rng(seed)
    steps = steps if steps is not None else np.unique(np.round(np.geomspace(1, 2000, 40))).astype(int)
    curves, chosen = [], []
    rid = 0
    for opt, p in exponents.items():
        for s in range(seeds):
            g = 2.0 * steps**p * np.exp(noise * rng.standard_normal(len(steps)))
            curves.append(pd.DataFrame({"run_id": rid, "step": steps, "gap": g}))
            chosen.append({"run_id": rid, "cell_id": 0, "optimizer": opt, "seed": s, "status": "ok", "score": g[-1]})
            rid += 1
    return pd.concat(curves, ignore_index=True), pd.DataFrame(chosen)


def test_rate_fit_recovers_known_exponents():
    truth = {"slow": -0.25, "mid": -1 / 3, "fast": -2 / 3}
    curves, chosen = _synthetic(truth)
    fits = fit_curves(curves, chosen, "gap", window=(20, 2000))
    tab = rate_table(fits, {"slow": "muon", "mid": "muon_mvr2", "fast": "gd"}).set_index("optimizer")
    for opt, p in truth.items():
        assert abs(tab.loc[opt, "slope"] - p) < 0.03, (opt, tab.loc[opt, "slope"])
        assert tab.loc[opt, "slope_ci_low"] - 0.02 <= p <= tab.loc[opt, "slope_ci_high"] + 0.02
    assert tab.loc["slow", "n_seeds"] == 6
    # the reference exponent of the kind is attached (gap metric: PL last-iterate rate for MVR2)
    assert np.isclose(tab.loc["mid", "reference_slope"], -1 / 3)  # arXiv 2509.15816 v5 abstract
    assert np.isnan(tab.loc["fast", "reference_slope"])


def test_rate_fit_window_excludes_a_plateau():
    steps = np.unique(np.round(np.geomspace(1, 1000, 40))).astype(int)
    g = np.where(steps < 100, 1.0 * steps**-0.5, 0.1)  # power law, then a noise floor
    curves = pd.DataFrame({"run_id": 0, "step": steps, "gap": g})
    chosen = pd.DataFrame([{"run_id": 0, "cell_id": 0, "optimizer": "x", "seed": 0, "status": "ok"}])
    early = fit_curves(curves, chosen, "gap", window=(1, 90))["slope"].iloc[0]
    late = fit_curves(curves, chosen, "gap", window=(100, 1000))["slope"].iloc[0]
    assert np.isclose(early, -0.5) and abs(late) < 1e-9


def test_fit_vs_horizon():
    rng = np.random.default_rng(2)
    rows = [
        {"optimizer": "m", "seed": s, "T": T, "final": 3.0 * T ** (-1 / 3) * np.exp(0.02 * rng.standard_normal())}
        for s in range(5)
        for T in (100, 200, 400, 800, 1600)
    ]
    tab = fit_vs_horizon(pd.DataFrame(rows), "T", "final")
    assert abs(tab["slope"].iloc[0] + 1 / 3) < 0.03 and tab["n_horizons"].iloc[0] == 5
