"""Per-run criteria on constructed curves and the tuning selection on a constructed run table."""

import numpy as np
import pandas as pd
import pytest

from analysis.tune import auc_log_gap, criterion, refine_edges, select, steps_to_target, to_toml


def _curves(rows):
    return pd.DataFrame(rows, columns=["run_id", "step", "gap"])


def test_steps_to_target_on_constructed_curves():
    steps = [0, 1, 2, 4, 8]
    c = _curves(
        [(0, s, g) for s, g in zip(steps, [1.0, 0.5, 0.2, 0.05, 0.001])]
        + [(1, s, g) for s, g in zip(steps, [1.0, 0.9, 0.8, 0.7, 0.6])]
        + [(2, s, g) for s, g in zip(steps, [10.0, 5.0, 1.0, 0.5, 0.1])]
    )
    rel = steps_to_target(c, 0.1)
    assert rel[0] == 4 and np.isinf(rel[1]) and rel[2] == 2  # 10 -> 1.0 is exactly 0.1 x
    ab = steps_to_target(c, 0.1, relative=False)
    assert ab[0] == 4 and np.isinf(ab[1]) and ab[2] == 8


def test_auc_log_gap_of_exponential_decay():
    # log10 gap falls linearly from 0 to -2 over [0, 100]: its time average is -1
    t = np.array([0, 10, 25, 50, 100])
    c = _curves([(7, s, 10 ** (-2 * s / 100)) for s in t])
    assert np.isclose(auc_log_gap(c)[7], 0.1)


def _runs(table):
    """table: {(optimizer, lr): [scores per seed]}, one cell, final_gap = score."""
    rows = []
    for (opt, lr), scores in table.items():
        for seed, s in enumerate(scores):
            rows.append(
                {
                    "cell_id": 0,
                    "p_a": 1.0,
                    "optimizer": opt,
                    "optimizer_kind": opt,
                    "h_lr": lr,
                    "seed": seed,
                    "status": "ok" if np.isfinite(s) else "diverged",
                    "final_gap": s if np.isfinite(s) else np.nan,
                }
            )
    df = pd.DataFrame(rows)
    df.insert(0, "run_id", range(len(df)))
    return df


def test_select_picks_the_best_median_and_flags_edges():
    runs = _runs(
        {
            ("a", 0.01): [3.0, 3.1, 2.9],
            ("a", 0.1): [1.0, 1.2, 0.8],
            ("a", 1.0): [2.0, np.inf, 2.2],
            ("b", 0.01): [5.0, 5.0, 5.0],
            ("b", 0.1): [4.0, 4.1, 3.9],
            ("b", 1.0): [0.5, 0.6, 0.4],
        }
    )
    summary, sens, chosen = select(runs, criterion(runs, "final_gap"))
    s = summary.set_index("optimizer")
    assert s.loc["a", "h_lr"] == 0.1 and s.loc["a", "median"] == 1.0 and not s.loc["a", "lr_at_edge"]
    assert s.loc["b", "h_lr"] == 1.0 and s.loc["b", "lr_at_edge"] and s.loc["b", "lr_edge"] == "high"
    assert (summary["n_grid"] == 3).all()
    assert s.loc["a", "ci_low"] <= 1.0 <= s.loc["a", "ci_high"]
    assert len(sens) == 6
    # the diverged seed counts as +inf: the median of (2.0, inf, 2.2) is 2.2
    assert sens[(sens["optimizer"] == "a") & (sens["h_lr"] == 1.0)]["median"].iloc[0] == pytest.approx(2.2)
    assert sorted(chosen[chosen["optimizer"] == "b"]["score"]) == [0.4, 0.5, 0.6]


def test_refine_edges_widens_only_the_hit_side_and_writes_valid_toml():
    import tomllib

    summary = pd.DataFrame(
        {
            "cell_id": [0, 1, 0],
            "optimizer": ["gd", "gd", "muon"],
            "lr_at_edge": [True, False, False],
            "lr_edge": ["high", "", ""],
        }
    )
    cfg = {
        "name": "x",
        "steps": 10,
        "seeds": [0],
        "problem": {"kind": "power_law_lsq", "grid": {"alpha": {"linspace": [0.0, 1.0, 2]}}},
        "optimizers": [
            {"name": "gd", "label": None, "lr": {"logspace": [-3.0, -1.0, 3]}, "hparams": {}},
            {"name": "muon", "label": None, "lr": [0.01, 0.1], "hparams": {}},
        ],
        "analysis": {"focus": None, "criterion": "final_gap"},
    }
    props, new = refine_edges(summary, cfg, {"gd": [1e-3, 1e-2, 1e-1], "muon": [0.01, 0.1]}, extra=2)
    assert list(props["optimizer"]) == ["gd"] and props["edge"].iloc[0] == "high"
    assert np.allclose(new["optimizers"][0]["lr"], [1e-3, 1e-2, 1e-1, 1.0, 10.0])
    assert new["optimizers"][1]["lr"] == [0.01, 0.1]
    back = tomllib.loads(to_toml(new))
    assert back["optimizers"][0]["lr"] == new["optimizers"][0]["lr"]
    assert back["problem"]["grid"]["alpha"] == {"linspace": [0.0, 1.0, 2]}
    assert "label" not in back["optimizers"][0] and back["name"] == "x_refined"
