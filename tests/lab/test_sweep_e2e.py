"""A tiny sweep end to end: all five files, with exactly the columns docs/results.md documents."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from lab.api import run_sweep
from lab.config import parse_config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "results.md"

TINY = {
    "name": "tiny",
    "steps": 12,
    "log_points": 5,
    "seeds": [0, 1],
    "accumulate": ["gap", "grad_fro", "grad_nuc"],  # so that every documented column is written
    "problem": {
        "kind": "power_law_lsq",
        "fixed": {"m": 4, "n": 6, "batch_size": 3, "noise": "minibatch", "label_noise": 0.5},
        "grid": {"alpha": [0.0, 1.5], "beta": {"linspace": [0.0, 1.0, 2]}},
    },
    "optimizers": [
        {"name": "gd", "lr": {"logspace": [-2, 0, 3]}},
        {"name": "signsgd", "lr": [1e-3, 1e-2, 1e-1]},
        {"name": "muon", "lr": {"logspace": [-3, -1, 3]}, "hparams": {"beta": 0.9}},
    ],
}


def documented_columns(section: str) -> list[str]:
    text = DOCS.read_text()
    body = text.split(f"## {section}")[1].split("\n## ")[0]
    return re.findall(r"^\| `([^`]+)` \|", body, flags=re.M)


def matches(col: str, documented: list[str]) -> bool:
    for d in documented:
        pattern = "^" + re.sub(r"<[^>]+>", ".+", re.escape(d).replace(r"\<", "<").replace(r"\>", ">")) + "$"
        if re.match(pattern, col):
            return True
    return False


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    res = run_sweep(parse_config(TINY), out_dir=out, progress=False)
    return out, res


@pytest.mark.parametrize("name", ["runs.csv", "curves.csv", "summary.csv", "phase.csv"])
def test_columns_are_exactly_the_documented_ones(sweep, name):
    out, _ = sweep
    df = pd.read_csv(out / name)
    documented = documented_columns(name)
    assert documented, f"docs/results.md has no table for {name}"
    undocumented = [c for c in df.columns if not matches(c, documented)]
    assert not undocumented, f"{name}: columns missing from docs/results.md: {undocumented}"
    fixed = [d for d in documented if "<" not in d]
    missing = [d for d in fixed if d not in df.columns]
    assert not missing, f"{name}: documented columns not written: {missing}"


def test_every_run_once_and_grid_shapes(sweep):
    out, res = sweep
    runs = pd.read_csv(out / "runs.csv")
    n_cells, n_seeds, n_lr, n_opt = 4, 2, 3, 3
    assert len(runs) == res["n_runs"] == n_cells * n_seeds * n_lr * n_opt
    assert runs["run_id"].is_unique and runs["run_id"].tolist() == sorted(runs["run_id"])
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["run_id"]) == set(runs["run_id"])
    assert curves.groupby("run_id")["step"].agg(["min", "max"]).eq([0, 12]).all().all()
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == n_cells * n_opt
    phase = pd.read_csv(out / "phase.csv")
    assert len(phase) == n_cells and set(phase["winner"]) <= {"gd", "signsgd", "muon"}
    # the tuned median really is the smallest median over the lr grid
    for _, row in summary.iterrows():
        sub = runs[(runs.cell_id == row.cell_id) & (runs.optimizer == row.optimizer)]
        med = sub.assign(s=sub.final_gap.where(sub.status == "ok")).groupby("h_lr")["s"].median()
        assert row["median"] == pytest.approx(med.min(), rel=1e-12)


def test_manifest_and_figures(sweep):
    out, _ = sweep
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "complete" and m["n_runs"] == 72 and m["dtype"] == "float32"
    for key in ("config", "config_hash", "versions", "backend", "git_revision", "wall_s"):
        assert key in m
    for fig in ("phase_winner.png", "phase_ratio_gd.png", "phase_ratio_signsgd.png"):
        assert (out / fig).stat().st_size > 5000


def test_rerun_skips_finished_jobs(sweep):
    out, first = sweep
    before = (out / "runs.csv").read_text()
    again = run_sweep(parse_config(TINY), out_dir=out, progress=False)
    assert again["jobs_run_now"] == 0
    strip = lambda t: pd.read_csv(pd.io.common.StringIO(t)).drop(columns=["job_wall_s"])
    pd.testing.assert_frame_equal(strip(before), strip((out / "runs.csv").read_text()))
