"""The claims framework's first rules (ratio_bound, winner_regions, mode_exponent) on constructed
sweeps with known answers, and the verdict aggregation."""

import json

import numpy as np
import pandas as pd

from analysis import rules as v
from analysis.results import Results


def write_summary(tmp_path, rows):
    pd.DataFrame(rows).to_csv(tmp_path / "summary.csv", index=False)
    return Results(tmp_path)


def row(cell, a, b, opt, med, half=0.01):
    return {
        "cell_id": cell,
        "p_alpha": a,
        "p_beta": b,
        "optimizer": opt,
        "median": med,
        "ci_low": med * (1 - half),
        "ci_high": med * (1 + half),
    }


def test_ratio_bound_and_winner_regions_on_a_known_map(tmp_path):
    # alpha = 0: a and b within a factor 2 (CIs still separate); alpha = 1: b wins by 10x at beta = 0,
    # a by 10x at beta = 1;
    # alpha = 2: overlapping CIs (tie)
    rows = []
    cells = [
        (0, 0.0, 0.0, 1.0, 2.0),
        (1, 0.0, 1.0, 1.0, 0.6),
        (2, 1.0, 0.0, 10.0, 1.0),
        (3, 1.0, 1.0, 1.0, 10.0),
        (4, 2.0, 0.0, 1.0, 1.001),
        (5, 2.0, 1.0, 1.0, 1.001),
    ]
    for c, a, b, ma, mb in cells:
        rows += [row(c, a, b, "a", ma), row(c, a, b, "b", mb)]
    data = write_summary(tmp_path, rows)
    st, _, nums = v.RULES["ratio_bound"](data, focus="b", rival="a", bound=0.35, where={"alpha": 0.0})
    assert st == "reproduced" and nums["max_abs_log10_ratio"] == round(np.log10(2.0), 3)
    st, _, _ = v.RULES["ratio_bound"](data, focus="b", rival="a", bound=0.2, where={"alpha": 0.0})
    assert st == "not reproduced"
    st, _, nums = v.RULES["winner_regions"](data, a="a", b="b", x="alpha", y="beta")
    assert st == "reproduced" and (nums["cells_a"], nums["cells_b"], nums["cells_tie"]) == (
        2,
        2,
        2,
    )  # a: cells 0, 3; b: cells 1, 2; ties: 4, 5
    st, _, _ = v.RULES["winner_regions"](data, a="a", b="b", x="alpha", y="beta", where={"alpha": 1.0})
    assert st == "partly"  # a and b regions, no tie
    assert v.RULES["ratio_bound"](data, focus="b", rival="a", bound=1.0, where={"alpha": 5.0})[0] == "not testable"


def test_mode_exponent_recovers_a_known_exponent(tmp_path):
    """Mode j decays as exp(-c lambda_j^q t) with lambda_j = j^-alpha: its e-folding step is
    1 / (c lambda_j^q), so the fitted exponent must be q."""
    alpha, q, c = 1.0, 0.5, 0.05
    modes = [1, 2, 4, 8, 16, 32]
    steps = np.unique(np.round(np.geomspace(1, 4000, 80)).astype(int))
    steps = np.concatenate([[0], steps])
    runs, curves = [], []
    for rid, seed in enumerate((0, 1, 2)):
        runs.append(
            {
                "run_id": rid,
                "cell_id": 0,
                "problem": "power_law_lsq",
                "p_alpha": alpha,
                "optimizer": "x",
                "optimizer_kind": "x",
                "h_lr": 1.0,
                "seed": seed,
                "status": "ok",
                "final_gap": 1.0,
            }
        )
        for t in steps:
            curves.append(
                {"run_id": rid, "step": t, **{f"mode_err_{j}": np.exp(-c * (j**-alpha) ** q * t) for j in modes}}
            )
    pd.DataFrame(runs).to_csv(tmp_path / "runs.csv", index=False)
    pd.DataFrame(curves).to_csv(tmp_path / "curves.csv", index=False)
    n = max(modes)  # the ground truth the rule reads: spectra.csv's cov, lambda_j = j^-alpha
    pd.DataFrame(
        [
            {"cell_id": 0, "seed": s, "name": "cov", "index": i, "value": (i + 1.0) ** -alpha}
            for s in (0, 1, 2)
            for i in range(n)
        ]
    ).to_csv(tmp_path / "spectra.csv", index=False)
    (tmp_path / "manifest.json").write_text(json.dumps({"config": {"analysis": {"criterion": "final_gap"}}}))
    data = Results(tmp_path)
    st, _, nums = v.RULES["mode_exponent"](data, optimizer="x", expected=0.5, tol=0.02)
    assert st == "reproduced" and abs(nums["median_exponent"] - q) < 0.02, nums
    assert v.RULES["mode_exponent"](data, optimizer="x", expected=1.0, tol=0.1)[0] == "not reproduced"
    assert v.RULES["mode_exponent"](data, optimizer="nobody", expected=1.0, tol=0.1)[0] == "not testable"


def test_overall():
    V = lambda s: v.Verdict(claim="c", status=s, rule="r")
    assert v.overall([V("reproduced"), V("reproduced")]) == "reproduced"
    assert v.overall([V("reproduced"), V("not reproduced")]) == "partly"
    assert v.overall([V("not reproduced"), V("not testable")]) == "not reproduced"
    assert v.overall([V("not testable")]) == "not testable"
