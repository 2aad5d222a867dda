"""Tuning and the phase table on constructed run tables with known answers."""

import numpy as np
import pandas as pd

from analysis.phase import phase_table
from analysis.tune import tune


def table(scores: dict, seeds=(0, 1, 2, 3, 4), diverged=()):
    """scores: {(cell, optimizer, lr): per-seed list or scalar}."""
    rows = []
    rid = 0
    for (cell, opt, lr), val in scores.items():
        vals = np.broadcast_to(np.asarray(val, float), (len(seeds),))
        for s, v in zip(seeds, vals):
            rows.append(
                dict(
                    run_id=rid,
                    cell_id=cell,
                    p_a=float(cell),
                    optimizer=opt,
                    h_lr=lr,
                    seed=s,
                    status="diverged" if (cell, opt, lr, s) in diverged else "ok",
                    final_gap=v,
                    best_gap=v,
                    steps_to_target=np.inf,
                )
            )
            rid += 1
    return pd.DataFrame(rows)


def test_best_lr_edge_flag_and_divergence_counts_as_inf():
    runs = table(
        {
            (0, "a", 0.1): 3.0,
            (0, "a", 1.0): 1.0,
            (0, "a", 10.0): 2.0,  # interior best
            (0, "b", 0.1): 0.5,
            (0, "b", 1.0): 1.0,
            (0, "b", 10.0): 2.0,  # best at the small edge
            (1, "a", 0.1): 3.0,
            (1, "a", 1.0): 2.0,
            (1, "a", 10.0): 0.1,  # best at the large edge, but
        },
        diverged={(1, "a", 10.0, s) for s in (0, 1, 2)},
    )  # 3 of 5 seeds diverged there
    s = tune(runs, "final_gap").set_index(["cell_id", "optimizer"])
    assert s.loc[(0, "a"), "h_lr"] == 1.0 and not s.loc[(0, "a"), "lr_at_edge"]
    assert s.loc[(0, "b"), "h_lr"] == 0.1 and s.loc[(0, "b"), "lr_at_edge"]
    assert s.loc[(1, "a"), "h_lr"] == 1.0  # median of {inf, inf, inf, .1, .1} is inf
    assert s.loc[(0, "a"), "median"] == 1.0


def test_phase_winner_tie_and_log_ratio():
    rng = np.random.default_rng(0)
    sep_a = 1.0 + 0.01 * rng.standard_normal(9)
    sep_b = 10.0 + 0.1 * rng.standard_normal(9)
    ov_a = 1.0 + 0.5 * rng.standard_normal(9)
    ov_b = 1.05 + 0.5 * rng.standard_normal(9)
    seeds = tuple(range(9))
    runs = table({(0, "a", 1.0): sep_a, (0, "b", 1.0): sep_b, (1, "a", 1.0): ov_a, (1, "b", 1.0): ov_b}, seeds=seeds)
    s = tune(runs, "final_gap")
    cells = runs[["cell_id", "p_a"]].drop_duplicates()
    ph = phase_table(s, cells, focus="a").set_index("cell_id")
    assert ph.loc[0, "winner"] == "a" and not ph.loc[0, "tie"]
    assert abs(ph.loc[0, "log10_ratio_b"] - np.log10(np.median(sep_a) / np.median(sep_b))) < 1e-12
    assert ph.loc[0, "margin"] > 9
    assert ph.loc[1, "tie"]


def test_bootstrap_ci_brackets_the_median():
    rng = np.random.default_rng(1)
    vals = rng.lognormal(size=7)
    runs = table({(0, "a", 1.0): vals, (0, "b", 1.0): vals * 2}, seeds=tuple(range(7)))
    s = tune(runs, "final_gap")
    assert (s["ci_low"] <= s["median"]).all() and (s["median"] <= s["ci_high"]).all()
    assert (s["ci_low"] >= vals.min()).all()
