"""End to end on a tiny sweep: figures written and non-empty, tables with the promised columns,
the report (md + self-contained HTML) and the ``report`` subcommand with --refine-edges."""

import json
import re

import numpy as np
import pandas as pd
import pytest

import analysis

PNG = b"\x89PNG"

TINY = {
    "name": "tiny",
    "steps": 30,
    "log_points": 8,
    "seeds": [0, 1],
    "dtype": "float64",
    "problem": {
        "kind": "power_law_lsq",
        "fixed": {"m": 4, "n": 8, "batch_size": 4, "noise": "minibatch"},
        "grid": {"alpha": [0.0, 2.0], "beta": [0.0, 1.0], "sigma": [0.0, 0.5]},
    },
    "optimizers": [
        {"name": "gd", "lr": [1e-4, 2e-4, 4e-4]},  # far too small: the best lr sits at the top edge
        {"name": "signsgd", "lr": {"logspace": [-3, -1, 3]}},
        {"name": "muon", "lr": {"logspace": [-2.5, -0.5, 3]}},
    ],
    "analysis": {"x": "alpha", "y": "beta"},
}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from lab.api import run_sweep
    from lab.config import parse_config

    out = tmp_path_factory.mktemp("tiny")
    res = run_sweep(parse_config(TINY), out_dir=out, progress=False)  # runs analysis.analyze itself
    return out, res["paths"]


def _png_ok(p):
    return p.exists() and p.stat().st_size > 2000 and p.read_bytes()[:4] == PNG


def test_tiny_sweep_figures_and_tables(sweep):
    sweep, paths = sweep
    for name in (
        "phase_winner",
        "phase_ratio_gd",
        "phase_ratio_signsgd",
        "lr_sensitivity_sigma=0",
        "lr_sensitivity_sigma=0.5",
        "performance_profile",
        "curves_selected",
    ):
        assert _png_ok(paths[name]), name
    # a demo-like sweep (constant lrs, the gap, no rate asked for): no rate claim, no rates.png
    assert not (sweep / "rates.png").exists() and (sweep / "rates.csv").exists()
    phase = pd.read_csv(sweep / "phase.csv")
    assert len(phase) == 8
    for col in (
        "winner",
        "runner_up",
        "margin",
        "margin_ci_low",
        "margin_ci_high",
        "tie",
        "tied_with",
        "winner_lr_at_edge",
        "log10_ratio_gd",
        "log10_ratio_gd_ci_low",
        "vs_gd",
        "vs_signsgd",
        "theory_advantage",
        "seen_rank",
        "A_seen",
        "vs_gd_grad_nuc",
    ):
        assert col in phase, col
    summary = pd.read_csv(sweep / "summary.csv")
    gd = summary[summary["optimizer"] == "gd"]
    assert gd["lr_at_edge"].all() and (gd["lr_edge"] == "high").all()
    assert (summary["n_grid"] == 3).all()
    sens = pd.read_csv(sweep / "sensitivity.csv")
    assert len(sens) == 8 * 3 * 3
    info = json.loads((sweep / "analysis.json").read_text())
    assert "predicted_winner" not in phase and "agreement" not in info and info["criterion"] == "final_gap"
    # the exact gradient of a 4 x 8 problem has rank <= 4;
    # A_seen = k L / L_star <= min(m, n) L / L_star = theory_advantage
    assert phase["seen_rank"].between(1, 4).all() and (phase["A_seen"] <= phase["theory_advantage"] * (1 + 1e-12)).all()
    assert {t["quantity"] for t in info["theory_trend"]} == {"final_gap", "final_grad_nuc"}
    assert all(t["status"] in ("reproduced", "not reproduced", "partly", "not testable") for t in info["theory_trend"])


def test_report_cli_with_refine_edges(sweep, capsys):
    from lab.cli import main
    from lab.config import load_config

    sweep, _ = sweep
    assert main(["report", str(sweep), "--focus", "nope"]) == 2
    assert main(["report", str(sweep), "--refine-edges", "--criterion", "best_gap"]) == 0
    assert "refine_edges.toml" in capsys.readouterr().out
    assert json.loads((sweep / "analysis.json").read_text())["criterion"] == "best_gap"
    md = (sweep / "report.md").read_text()
    assert (
        "agreement score" not in md.lower()
        and "Two-sided trend test" in md
        and "gd: tuned lr at the edge of its grid in 8/8 cells" in md
    )
    html = (sweep / "report.html").read_text()
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) >= 5 and 'src="phase' not in html  # self-contained
    cfg = load_config(sweep / "refine_edges.toml")
    gd = next(o for o in cfg.optimizers if o.name == "gd")
    assert np.allclose(gd.lr, [1e-4, 2e-4, 4e-4, 8e-4, 1.6e-3])


def test_synthetic_directory_with_mode_errors(tmp_path):
    """A results directory written by hand (analysis reads only files): one swept axis, curves
    with per-mode errors, so the Phases-of-Muon overlay is drawn."""
    steps = np.concatenate([[0], np.unique(np.round(np.geomspace(1, 3000, 40))).astype(int)])
    modes = np.arange(1, 13)
    runs, curves = [], []
    rid = 0
    for cid, alpha in enumerate((0.0, 1.0, 2.0)):
        lam = modes**-alpha
        for opt, q in (("gd", 1.0), ("muon", 0.5)):
            for lr in (0.01, 0.1):
                for seed in (0, 1, 2):
                    rate = lr * lam**q * (1 + 0.02 * seed)
                    err = np.exp(-np.outer(steps, rate))
                    gap = err.sum(axis=1) / len(modes) + 1e-4
                    c = pd.DataFrame(err, columns=[f"mode_err_{j}" for j in modes])
                    c.insert(0, "gap", gap)
                    for m in ("grad_fro", "grad_nuc", "grad_op", "dist_fro"):
                        c.insert(1, m, gap)
                    c.insert(0, "step", steps)
                    c.insert(0, "run_id", rid)
                    curves.append(c)
                    runs.append(
                        {
                            "run_id": rid,
                            "cell_id": cid,
                            "problem": "power_law_lsq",
                            "p_m": 4,
                            "p_n": 12,
                            "p_alpha": alpha,
                            "optimizer": opt,
                            "optimizer_kind": opt,
                            "h_lr": lr,
                            "seed": seed,
                            "status": "ok",
                            "final_gap": gap[-1],
                            "best_gap": gap.min(),
                            "final_grad_nuc": gap[-1],
                            "steps_to_target": np.inf,
                            "c_L": 1.0,
                            "c_L_star": float(np.sort(lam)[::-1][:4].sum()),
                        }
                    )
                    rid += 1
    pd.DataFrame(runs).to_csv(tmp_path / "runs.csv", index=False)
    pd.concat(curves).to_csv(tmp_path / "curves.csv", index=False)
    pd.DataFrame(
        [
            {"cell_id": cid, "seed": s, "name": "cov", "index": j - 1, "value": float(j) ** -alpha}
            for cid, alpha in enumerate((0.0, 1.0, 2.0))
            for s in (0, 1, 2)
            for j in modes
        ]
    ).to_csv(tmp_path / "spectra.csv", index=False)
    cfg = {
        "name": "synthetic",
        "steps": 3000,
        "seeds": [0, 1, 2],
        "problem": {"kind": "power_law_lsq", "grid": {"alpha": [0.0, 1.0, 2.0]}},
        "optimizers": [{"name": "gd", "lr": [0.01, 0.1]}, {"name": "muon", "lr": [0.01, 0.1]}],
        "analysis": {"criterion": "auc_log_gap"},
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"config": cfg, "config_hash": "x"}))
    paths = analysis.report(tmp_path)
    assert _png_ok(paths["phase_modes"]) and _png_ok(paths["phase_winner"]) and _png_ok(paths["phase_ratio_gd"])
    modes_tab = pd.read_csv(tmp_path / "modes.csv")
    got = modes_tab.groupby("optimizer")["slope"].median()
    assert abs(got["gd"] - 1.0) < 0.05 and abs(got["muon"] - 0.5) < 0.05
    assert (pd.read_csv(tmp_path / "summary.csv")["h_lr"] == 0.1).all()  # the larger lr decays faster


def test_horizon_rates_without_curves(tmp_path):
    """A hyperparameter that is the horizon T is grouped on, not tuned over; the final gap of the
    runs tuned per T gives the exponent against T (here T^-1/2 by construction)."""
    rng = np.random.default_rng(5)
    rows, rid = [], 0
    for opt, p in (("muon_mvr2", -0.5), ("muon", -0.25)):
        for T in (100, 400, 1600, 6400):
            for lr in (0.01, 0.1):
                for seed in range(4):
                    g = (1.0 if lr == 0.1 else 3.0) * T**p * np.exp(0.02 * rng.standard_normal())
                    rows.append(
                        {
                            "run_id": rid,
                            "cell_id": 0,
                            "problem": "power_law_lsq",
                            "p_m": 4,
                            "p_n": 4,
                            "p_alpha": 1.0,
                            "optimizer": opt,
                            "optimizer_kind": opt,
                            "h_lr": lr,
                            "h_horizon": T,
                            "seed": seed,
                            "status": "ok",
                            "final_gap": g,
                            "best_gap": g,
                            "final_grad_nuc": g,
                            "steps_to_target": np.inf,
                        }
                    )
                    rid += 1
    pd.DataFrame(rows).to_csv(tmp_path / "runs.csv", index=False)
    cfg = {
        "name": "horizon",
        "steps": 6400,
        "seeds": [0, 1, 2, 3],
        "problem": {"kind": "power_law_lsq", "grid": {}},
        "optimizers": [{"name": "muon_mvr2", "lr": [0.01, 0.1]}, {"name": "muon", "lr": [0.01, 0.1]}],
        "analysis": {"rate_horizon": "horizon"},
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"config": cfg}))
    analysis.report(tmp_path)
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert len(summary) == 8 and (summary["h_lr"] == 0.1).all() and (summary["n_grid"] == 2).all()
    tab = pd.read_csv(tmp_path / "rates_horizon.csv").set_index("optimizer")
    assert abs(tab.loc["muon_mvr2", "slope"] + 0.5) < 0.03 and abs(tab.loc["muon", "slope"] + 0.25) < 0.03
    assert "Exponent against the horizon" in (tmp_path / "report.md").read_text()
