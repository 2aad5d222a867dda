"""Winner, tie, margin and log-ratios on constructed per-seed samples; performance profiles."""

import numpy as np
import pandas as pd

from analysis.phase import performance_profile, phase_table
from analysis.tune import criterion, select


def _runs(cells):
    """cells: {cell_id: {optimizer: [scores per seed]}}, one lr per optimizer."""
    rows = []
    for cid, opts in cells.items():
        for opt, scores in opts.items():
            for seed, s in enumerate(scores):
                rows.append(
                    {
                        "cell_id": cid,
                        "p_a": float(cid),
                        "optimizer": opt,
                        "optimizer_kind": opt,
                        "h_lr": 0.1,
                        "seed": seed,
                        "status": "ok",
                        "final_gap": s,
                    }
                )
    df = pd.DataFrame(rows)
    df.insert(0, "run_id", range(len(df)))
    return df


def _phase(cells, focus="muon"):
    runs = _runs(cells)
    summary, _, chosen = select(runs, criterion(runs, "final_gap"))
    cell_df = runs[["cell_id", "p_a"]].drop_duplicates()
    return phase_table(summary, cell_df, focus, chosen).set_index("cell_id")


def test_separated_samples_give_a_winner_and_overlapping_ones_a_tie():
    rng = np.random.default_rng(3)
    sep = {
        "muon": list(1.0 + 0.01 * rng.random(8)),
        "gd": list(2.0 + 0.01 * rng.random(8)),
        "sign": list(4.0 + 0.01 * rng.random(8)),
    }
    over = {
        "muon": list(1.0 + 0.5 * rng.random(8)),
        "gd": list(1.05 + 0.5 * rng.random(8)),
        "sign": list(9.0 + 0.01 * rng.random(8)),
    }
    ph = _phase({0: sep, 1: over})
    assert ph.loc[0, "winner"] == "muon" and ph.loc[0, "runner_up"] == "gd" and not ph.loc[0, "tie"]
    assert ph.loc[1, "tie"] and ph.loc[1, "tied_with"] in ("gd", "muon")
    assert "sign" not in ph.loc[1, "tied_with"]
    # margin = runner-up median / winner median, computed here from the samples
    m = np.median(sep["gd"]) / np.median(sep["muon"])
    assert np.isclose(ph.loc[0, "margin"], m)
    assert ph.loc[0, "margin_ci_low"] <= m <= ph.loc[0, "margin_ci_high"]
    assert ph.loc[0, "margin_ci_low"] > 1.0
    # log-ratio of the focus to each rival, and the pairwise verdicts
    assert np.isclose(ph.loc[0, "log10_ratio_sign"], np.log10(np.median(sep["muon"]) / np.median(sep["sign"])))
    assert ph.loc[0, "vs_gd"] == "muon" and ph.loc[1, "vs_gd"] == "tie" and ph.loc[1, "vs_sign"] == "muon"
    assert ph.loc[0, "log10_ratio_gd_ci_high"] < 0


def test_all_methods_failing_is_no_winner():
    inf = float("inf")
    ph = _phase({0: {"muon": [inf, inf, inf], "gd": [inf, inf, inf]}})
    assert ph.loc[0, "winner"] == "none" and not ph.loc[0, "tie"]
    assert ph.loc[0, "vs_gd"] == "tie"


def test_performance_profile_fractions():
    # ratios to the best: a = [1, 1, 4], b = [2, 1, 1], c = [inf, 3, 1]
    summary = pd.DataFrame(
        {
            "cell_id": [0, 0, 0, 1, 1, 1, 2, 2, 2],
            "optimizer": list("abc") * 3,
            "median": [1, 2, np.inf, 5, 5, 15, 4, 1, 1],
        }
    ).astype({"median": float})
    prof = performance_profile(summary, taus=np.array([1.0, 2.0, 3.0, 10.0]))
    f = prof.pivot(index="tau", columns="optimizer", values="fraction")
    assert np.allclose(f["a"], [2 / 3, 2 / 3, 2 / 3, 1.0])
    assert np.allclose(f["b"], [2 / 3, 1.0, 1.0, 1.0])
    assert np.allclose(f["c"], [1 / 3, 1 / 3, 2 / 3, 2 / 3])
