"""The report's Shen et al. overlay on hand-written result directories: A with the gradient rank
seen (A_seen = k L / L_star, k = the max of curves.csv grad_rank over the logged steps >= 1 and
the runs of the cell), no winner prediction and no agreement score, and a two-sided trend test
that comes out "not reproduced" when the advantage falls with A and "partly" when it has no
trend."""
import json

import numpy as np
import pandas as pd
import pytest

import analysis

RANKS = (1, 2, 3, 4, 5, 6)  # the seen gradient rank of cell c is RANKS[c]; L = 1, L_star = 2
M, N = 8, 10


def _write(tmp_path, advantage):
    """GD and Muon (one lr, 3 seeds) per cell; Muon's final gap and final nuclear gradient norm are
    GD's / 10^advantage[c], so the measured log10(GD / Muon) of cell c is advantage[c]."""
    steps = np.array([0, 1, 10, 100])
    runs, curves, rid = [], [], 0
    for cid, k in enumerate(RANKS):
        for opt, fam in (("gd", "euclidean"), ("muon", "spectral")):
            for seed in (0, 1, 2):
                g = 1e-2 * (1 + 0.01 * seed) * (10.0 ** -advantage[cid] if opt == "muon" else 1.0)
                runs.append({"run_id": rid, "cell_id": cid, "problem": "quadratic", "p_m": M, "p_n": N, "p_rank": k,
                             "optimizer": opt, "optimizer_kind": opt, "optimizer_family": fam, "h_lr": 0.1, "seed": seed,
                             "status": "ok", "final_gap": g, "best_gap": g, "final_grad_nuc": g, "steps_to_target": np.inf,
                             "c_L": 1.0, "c_L_star": 2.0})
                # step 0 has full rank min(m, n): the seen rank counts steps >= 1 only; one run of the cell
                # (GD, seed 0) sees rank k at step 10, the others k - 1 at most: the max over runs is k
                top = k if (opt == "gd" and seed == 0) else max(k - 1, 1)
                curves.append(pd.DataFrame({"run_id": rid, "step": steps, "gap": [1.0, 0.5, 0.1, g], "grad_fro": 1.0,
                                            "grad_nuc": 1.0, "grad_op": 1.0, "dist_fro": 1.0,
                                            "grad_rank": [min(M, N), max(k - 1, 1), top, max(k - 1, 1)]}))
                rid += 1
    pd.DataFrame(runs).to_csv(tmp_path / "runs.csv", index=False)
    pd.concat(curves).to_csv(tmp_path / "curves.csv", index=False)
    cfg = {"name": "shen_constructed", "steps": 100, "seeds": [0, 1, 2],
           "problem": {"kind": "quadratic", "grid": {"rank": list(RANKS)}},
           "optimizers": [{"name": "gd", "lr": [0.1]}, {"name": "muon", "lr": [0.1]}]}
    (tmp_path / "manifest.json").write_text(json.dumps({"config": cfg, "config_hash": "x"}))
    analysis.report(tmp_path)
    return (tmp_path / "report.md").read_text(), pd.read_csv(tmp_path / "phase.csv"), json.loads((tmp_path / "analysis.json").read_text())


def _statuses(info):
    return {t["quantity"]: t["status"] for t in info["theory_trend"]}


def test_advantage_falling_with_a_is_not_reproduced(tmp_path):
    md, phase, info = _write(tmp_path, advantage=[-0.3 * k for k in RANKS])
    phase = phase.set_index("cell_id")
    assert list(phase["seen_rank"]) == list(RANKS)
    assert np.allclose(phase["A_seen"], np.array(RANKS) * 1.0 / 2.0)  # k L / L_star
    assert np.allclose(phase["theory_advantage"], min(M, N) / 2.0)  # the bound's r = min(m, n): constant here
    assert "predicted_winner" not in phase
    # Spearman rho = -1 over 6 cells: exact two-sided permutation p = 2/720 < 0.05, opposite sign
    assert _statuses(info) == {"final_gap": "not reproduced", "final_grad_nuc": "not reproduced"}
    rho = {t["quantity"]: t["statistic"] for t in info["theory_trend"]}
    assert rho["final_gap"] == pytest.approx(-1.0) and info["theory_trend"][0]["p_value"] == pytest.approx(2 / 720)
    assert "agreement" not in md.lower() and "predicted winner" not in md.lower()
    assert "**not reproduced**" in md and "A_seen" in md and "fails" in md


def test_advantage_without_trend_is_partly(tmp_path):
    # ranks of the advantage (3, 6, 1, 5, 2, 4) against A's (1..6): Spearman rho = 1 - 6*38/210 = -0.086
    md, _, info = _write(tmp_path, advantage=[0.0, 0.2, -0.2, 0.1, -0.1, 0.05])
    t = info["theory_trend"][0]
    assert t["statistic"] == pytest.approx(1 - 6 * 38 / 210) and t["p_value"] > 0.5
    assert set(_statuses(info).values()) == {"partly"}
    assert "no significant trend" in md and "agreement" not in md.lower()


def test_advantage_rising_with_a_is_reproduced(tmp_path):
    _, _, info = _write(tmp_path, advantage=[0.1 * k for k in RANKS])
    assert set(_statuses(info).values()) == {"reproduced"}
