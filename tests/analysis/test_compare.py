"""analysis.compare and its rules (analysis.rules.compare) on constructed sweeps with known
answers, including the data on which each rule must fail."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import pytest

from analysis import compare
from analysis.rules import compare as rules_compare
from analysis.tune import tune

STEPS = np.unique(np.r_[0, np.round(np.logspace(0, 3, 16))]).astype(int)  # 0, 1, 2, 3, 4, 6, ... 1000
SEEDS = [0, 1, 2, 3, 4]


class Data:
    """What a rule reads: ``table(name)``."""

    def __init__(self, runs, curves):
        self.tables = {"runs": runs, "curves": curves, "summary": tune(runs, "final_gap")}

    def table(self, name):
        return self.tables[name]


def sweep(cells: list[dict], curve, lrs=(1e-2,), calls=None) -> Data:
    """Runs of optimizers A and B at every cell, lr and seed; ``curve(cell, opt, lr, seed, steps)``
    gives the gap at the logged steps; ``calls[opt]`` the oracle calls per step."""
    runs, curves = [], []
    rid = 0
    for ci, cell in enumerate(cells):
        for opt in ("A", "B"):
            for lr in lrs:
                for s in SEEDS:
                    g = np.asarray(curve(cell, opt, lr, s, STEPS.astype(float)), float)
                    runs.append(
                        {
                            "run_id": rid,
                            "cell_id": ci,
                            **{f"p_{k}": v for k, v in cell.items()},
                            "optimizer": opt,
                            "optimizer_kind": opt.lower(),
                            "h_lr": lr,
                            "seed": s,
                            "status": "ok",
                            "final_gap": g[-1],
                            "oracle_calls": (calls or {}).get(opt, 1) * int(STEPS[-1]),
                        }
                    )
                    curves.append(pd.DataFrame({"run_id": rid, "step": STEPS, "gap": g}))
                    rid += 1
    return Data(pd.DataFrame(runs), pd.concat(curves, ignore_index=True))


def jitter(opt, s, cell=None, sd=0.03):
    """A fixed per-(cell, method, seed) multiplicative factor (the seeds' spread)."""
    key = zlib.crc32(repr((opt, s, sorted((cell or {}).items()))).encode())
    return float(np.exp(sd * np.random.default_rng(key).standard_normal()))


def crossing(cell, opt, lr, s, t):
    # A: 2 (1+t)^-1, B: 0.5 (1+t)^-1/2; equal at 1+t = 16: A worse before, better after
    return (2 * (1 + t) ** -1.0 if opt == "A" else 0.5 * (1 + t) ** -0.5) * jitter(opt, s)


def within_bands(cell, opt, lr, s, t):
    # the same curve; B 5 % above A, far inside the seeds' spread (a factor 0.7 ... 1.4)
    spread = [0.7, 0.85, 1.0, 1.2, 1.4]
    return (1 + t) ** -0.5 * spread[(s + (2 if opt == "B" else 0)) % 5] * (1.05 if opt == "B" else 1.0)


# --- whole curves -----------------------------------------------------------------------------
def test_curves_that_cross_beyond_noise_are_a_trade_off():
    d = sweep([{"alpha": 0.0}], crossing)
    st, _, nums = rules_compare.curves_cross(d, "A", "B")
    assert st == "reproduced" and nums["cells_trade-off"] == 1 and nums["trade_off_cells"] == [0]
    tab = rules_compare.curve_table(d, "A", "B")
    row = tab.iloc[0]
    # B ahead early, A ahead late; the separation flips once, near the closed-form crossing 1 + t = 16
    assert row["b_better_from"] < 15 < row["a_better_from"] <= 40 and row["sign_changes"] == 1


def test_curves_within_each_others_bands_are_a_tie_not_a_trade_off():
    d = sweep([{"alpha": 0.0}], within_bands)
    st, _, nums = rules_compare.curves_cross(d, "A", "B")
    assert st == "not reproduced" and nums["cells_tie"] == 1 and nums["cells_trade-off"] == 0


def test_a_single_separated_step_each_way_is_not_a_trade_off():
    steps = np.arange(1.0, 11.0)
    a = np.ones((5, 10)) * np.linspace(0.9, 1.1, 5)[:, None]
    b = a.copy()
    b[:, 3] *= 0.5  # B below at one step
    b[:, 7] *= 2.0  # B above at one step
    out = compare.curve_outcome(steps, a, b, "A", "B", min_points=2)
    assert out["outcome"] == compare.TIE and out["sign_changes"] == 1
    assert compare.curve_outcome(steps, a, b, "A", "B", min_points=1)["outcome"] == compare.TRADE_OFF
    # a fraction of a decade: the same stretch qualifies by points but not by span
    b2 = a.copy()
    b2[:, 1:4] *= 0.5  # steps 2..4: 0.3 decades
    b2[:, 7:10] *= 2.0  # steps 8..10: 0.1 decades
    assert compare.curve_outcome(steps, a, b2, "A", "B", min_points=3)["outcome"] == compare.TRADE_OFF
    assert compare.curve_outcome(steps, a, b2, "A", "B", min_points=3, min_decades=0.2)["outcome"] == "B"


# --- regions ----------------------------------------------------------------------------------
def labelled(kind_of):
    """A 6 x 4 (alpha, beta) grid whose cell (i, j) is A-better, B-better or a trade-off by ``kind_of(i, j)``."""
    cells = [{"alpha": float(i), "beta": float(j)} for i in range(6) for j in range(4)]

    def curve(cell, opt, lr, s, t):
        k = kind_of(int(cell["alpha"]), int(cell["beta"]))
        if k == "X":
            return crossing(cell, opt, lr, s, t)
        better = opt == k
        return (1 + t) ** -0.5 * (0.3 if better else 1.0) * jitter(opt, s, cell)

    return sweep(cells, curve)


def test_checkerboard_of_single_cells_fails_regions_though_every_label_occurs():
    d = labelled(lambda i, j: "ABX"[(i + j) % 3])  # no two edge-neighbours share a label
    st, _, nums = rules_compare.regions(d, "A", "B", x="alpha", y="beta", min_size=3)
    assert set(nums["cells_per_label"][k] for k in ("A", "B", "trade-off")) == {8}  # every label occurs
    assert st == "not reproduced" and nums["largest_region"] == {"A": 1, "B": 1, "trade-off": 1}
    assert sorted(nums["absent"]) == ["A", "B", "trade-off"]
    st1, _, _ = rules_compare.regions(d, "A", "B", x="alpha", y="beta", min_size=1)
    assert st1 == "reproduced"


def test_three_bands_of_columns_are_three_regions():
    d = labelled(lambda i, j: "A" if i < 2 else "X" if i < 4 else "B")
    st, _, nums = rules_compare.regions(d, "A", "B", x="alpha", y="beta", min_size=3)
    assert st == "reproduced" and nums["largest_region"] == {"A": 8, "B": 8, "trade-off": 8}
    a_reg = next(r for r in nums["regions"] if r["label"] == "A")
    assert sorted(map(tuple, a_reg["cells"])) == [(float(i), float(j)) for i in range(2) for j in range(4)]
    # two phases only: partly, and the absent one named
    d2 = labelled(lambda i, j: "A" if i < 3 else "B")
    st2, _, nums2 = rules_compare.regions(d2, "A", "B", x="alpha", y="beta")
    assert st2 == "partly" and nums2["absent"] == ["trade-off"]


def test_regions_of_a_hand_made_grid():
    g = np.array([["A", "A", "B"], ["B", "A", "B"], [None, "B", "B"]], dtype=object)
    regs = compare.regions(g)
    sizes = sorted((r["label"], r["size"]) for r in regs)
    assert sizes == [("A", 3), ("B", 1), ("B", 4)]  # the lone B at (0, 1) touches no other B by an edge


# --- a constant ratio ---------------------------------------------------------------------------
BETAS = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]


def ratio_sweep(log_ratio_of_beta, sd=0.05):
    cells = [{"alpha": 0.0, "beta": b} for b in BETAS]

    def curve(cell, opt, lr, s, t):
        base = (1 + t) ** -0.5 * jitter(opt, s, cell, sd)
        return base * (10 ** log_ratio_of_beta(cell["beta"]) if opt == "A" else 1.0)

    return sweep(cells, curve)


def test_constant_ratio_with_noise_passes_and_reports_the_constant():
    d = ratio_sweep(lambda b: -0.4)
    st, _, nums = rules_compare.ratio_constant(d, "A", "B", tol=0.15, along="beta", where={"alpha": 0.0})
    assert st == "reproduced" and nums["constant_ok"] and nums["no_drift"]
    assert abs(nums["log10_c"] + 0.4) < 0.05 and nums["slope_ci"][0] <= 0 <= nums["slope_ci"][1]


def test_ratio_drifting_with_beta_fails():
    d = ratio_sweep(lambda b: -0.4 - 0.3 * b)  # 0.45 decades of drift over the beta range
    st, _, nums = rules_compare.ratio_constant(d, "A", "B", tol=0.15, along="beta")
    assert st == "not reproduced" and not nums["no_drift"] and not nums["constant_ok"]
    assert nums["slope_ci"][1] < 0 and abs(nums["slope_per_beta"] + 0.3) < 0.05
    # a wide tolerance admits one constant, but the drift is still beyond noise
    st2, _, nums2 = rules_compare.ratio_constant(d, "A", "B", tol=0.5, along="beta")
    assert st2 == "partly" and nums2["constant_ok"] and not nums2["no_drift"]


# --- time to a target ---------------------------------------------------------------------------
def powers(cell, opt, lr, s, t):
    # A: (1+t)^-1, B: (1+t)^-1/2; the slower lr of each method is 3x slower in time
    slow = 3.0 if lr > 0.05 else 1.0
    return ((1 + t / slow) ** (-1.0 if opt == "A" else -0.5)) * jitter(opt, s, sd=0.01)


def test_crossing_step_interpolates_in_log_log():
    t = np.array([0.0, 1, 10, 100, 1000])
    v = 1.0 / np.maximum(t, 1)  # exactly t^-1 from t = 1 on
    assert compare.crossing_step(t, v, 0.05) == pytest.approx(20.0, rel=1e-12)
    assert compare.crossing_step(t, v, 1e-4) == math.inf
    assert compare.crossing_step(t, v, 2.0) == 0.0


def test_time_to_target_against_the_closed_form():
    d = sweep([{"alpha": 0.0}, {"alpha": 1.0}], powers, lrs=(0.01, 0.1), calls={"A": 1, "B": 2})
    # 5 % of the initial gap: A at 1 + t = 20 (t = 19), B at 1 + t = 400 (t = 399)
    st, _, nums = rules_compare.time_to_target(d, "A", "B", target=0.05)
    assert st == "reproduced" and nums["cells_focus_faster"] == 2
    assert abs(nums["median_log10_ratio"] - math.log10(19 / 399)) < 0.06
    st2, _, nums2 = rules_compare.time_to_target(d, "A", "B", target=0.05, unit="oracle_calls")
    assert abs(nums2["median_log10_ratio"] - math.log10(19 / (2 * 399))) < 0.06
    # the rival faster: the rule must fail
    st3, _, nums3 = rules_compare.time_to_target(d, "B", "A", target=0.05)
    assert st3 == "not reproduced" and nums3["cells_rival_faster"] == 2
    # tuned on the criterion instead of the time: the same lrs here (the fast lr wins both)
    assert (
        rules_compare.time_to_target(d, "A", "B", target=0.05, tune_by="criterion")[2]["median_log10_ratio"]
        == nums["median_log10_ratio"]
    )


def test_time_to_the_rivals_final_value():
    d = sweep([{"alpha": 0.0}], powers)
    # B's final value (1001)^-1/2 ~ 0.0316 is reached by A at 1 + t = 31.6
    st, _, nums = rules_compare.time_to_target(d, "A", "B")
    assert st == "reproduced"
    assert abs(nums["median_log10_ratio"] - math.log10((math.sqrt(1001) - 1) / 1000)) < 0.06
