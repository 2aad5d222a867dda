"""Assumption checks (analysis/assumptions.py) on a small real sweep, against values recomputed
here from its CSVs, and on copies of it doctored so that each check must fail."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from analysis import assumptions as A
from analysis import integrity
from analysis.results import Results

SWEEP = {
    "name": "assume",
    "steps": 300,
    "log_points": 12,
    "seeds": [0, 1],
    "problem": {"kind": "pl_sine", "fixed": {"m": 4, "n": 4, "noise": "gaussian"}, "grid": {"sigma": [0.1, 0.3]}},
    "optimizers": [{"name": "gd", "lr": [0.02, 0.05]}],
}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from lab.api import run_sweep
    from lab.config import parse_config

    out = tmp_path_factory.mktemp("assume")
    run_sweep(parse_config(SWEEP), out_dir=out, progress=False)
    return out


def doctored(src, tmp_path, **scale):
    """A copy of the sweep whose runs.csv constants c_<name> are multiplied by the given factors."""
    dst = tmp_path / "doctored"
    shutil.copytree(src, dst)
    runs = pd.read_csv(dst / "runs.csv")
    for k, f in scale.items():
        runs[f"c_{k}"] = runs[f"c_{k}"] * f
    rewrite(dst, "runs", runs)
    return dst


def rewrite(out, name, df):
    """Write the grid ``name`` of ``out`` anew and record it in the manifest as the lab would, so the
    doctored copy reads as a sweep with those values (not as a damaged grid, which Results refuses)."""
    path = out / f"{name}.csv"
    df.to_csv(path, index=False)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"][path.name] = integrity.record(path.read_bytes(), len(df))
    (out / "manifest.json").write_text(json.dumps(manifest))


def tuned_curves(out):
    data = Results(out)
    _, _, chosen = data.tuned()
    cur = data.curves
    return cur[cur["run_id"].isin(chosen["run_id"])]


def test_pl_holds_with_the_stated_constant_and_fails_with_a_larger_one(sweep, tmp_path):
    status, _, nums = A.CHECKS.get("pl_along_iterates")(Results(sweep))
    cur = tuned_curves(sweep)
    cur = cur[(cur.step >= 1) & (cur.gap > 0)]
    emp = (cur.grad_fro**2 / (2 * cur.gap)).min()
    assert status == A.HOLDS
    assert nums["empirical_pl_min"] == pytest.approx(emp, rel=1e-5)
    assert nums["empirical_pl_min"] >= nums["stated_mu_min"]
    # the same iterates against a PL constant 10x the smallest ratio seen: must be violated
    factor = 10 * emp / nums["stated_mu_min"]
    bad = doctored(sweep, tmp_path, mu=factor)
    status, _, nums = A.CHECKS.get("pl_along_iterates")(Results(bad))
    assert status == A.VIOLATED and nums["iterates_violating"] > 0


def test_gradient_bound_reports_the_largest_logged_gradient(sweep):
    G = float(tuned_curves(sweep).grad_fro.max())
    check = A.CHECKS.get("gradient_bound")
    st, _, nums = check(Results(sweep))
    assert nums["G"] == pytest.approx(G, rel=1e-6)
    assert check(Results(sweep), bound=1.01 * G)[0] == A.HOLDS
    assert check(Results(sweep), bound=0.99 * G)[0] == A.VIOLATED


def test_noise_and_constant_checks(sweep, tmp_path):
    assert A.CHECKS.get("noise")(Results(sweep), stochastic=True)[0] == A.HOLDS
    assert A.CHECKS.get("noise")(Results(sweep), stochastic=False)[0] == A.VIOLATED
    runs = pd.read_csv(sweep / "runs.csv")
    mu = runs["c_mu"].min()
    assert A.CHECKS.get("constant")(Results(sweep), name="mu", low=0, low_open=True)[0] == A.HOLDS
    assert A.CHECKS.get("constant")(Results(sweep), name="mu", low=2 * runs["c_mu"].max())[0] == A.VIOLATED
    st, _, nums = A.CHECKS.get("constant")(Results(sweep), name="mu")
    assert nums["mu_min"] == pytest.approx(mu)
    assert A.CHECKS.get("constant")(Results(sweep), name="no_such")[0] == A.NOT_CHECKED


def test_check_all_and_unknown_kind(sweep):
    out = A.check_all(sweep, [{"name": "PL", "kind": "pl_along_iterates"}, {"name": "noise", "kind": "noise"}])
    assert [c.status for c in out] == [A.HOLDS, A.HOLDS]
    with pytest.raises(KeyError, match=r"^'?kind: got 'nope'; allowed: "):
        A.check_all(sweep, [{"name": "x", "kind": "nope"}])


def test_gradient_rank_reads_the_logged_rank(sweep, tmp_path):
    data = Results(sweep)
    assert "grad_rank" in data.curves  # the run loop logs it
    seen = tuned_curves(sweep).query("step >= 1").grad_rank.max()
    st, _, nums = A.CHECKS.get("gradient_rank")(data, at_most=float(seen))
    assert st == A.HOLDS and nums["rank_seen_max"] == seen
    assert A.CHECKS.get("gradient_rank")(data, at_most=float(seen) - 1)[0] == A.VIOLATED
    assert np.isfinite(seen)
    # a directory without the column is not checked, never passed
    cur = pd.read_csv(sweep / "curves.csv").drop(columns="grad_rank")
    bare = tmp_path / "bare"
    shutil.copytree(sweep, bare)
    rewrite(bare, "curves", cur)
    assert A.CHECKS.get("gradient_rank")(Results(bare))[0] == A.NOT_CHECKED
