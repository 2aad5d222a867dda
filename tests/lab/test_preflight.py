"""Everything is refused before the first job, in one line naming the field: analysis fields that
only the sweep's shape decides, an absurd number of steps, arrays that cannot fit this machine or
the configured budget; ``run --dry-run`` prints the plan and writes nothing; unreadable config
files and Ctrl-C during start-up end in one line."""

from __future__ import annotations

import copy
import importlib.abc
import math
import sys
import tracemalloc
from pathlib import Path

import pytest

import problems
from lab import preflight
from lab.cli import main
from lab.config import parse_config
from lab.jobs import execute
from lab.plan import plan
from lab.sweep import expand_runs

sys.path.insert(0, str(Path(__file__).parent))
from sweep_helpers import toml  # noqa: E402

BASE = {
    "name": "pre",
    "steps": 40,
    "log_points": 5,
    "seeds": [0, 1],
    "problem": {
        "kind": "power_law_lsq",
        "fixed": {"m": 4, "n": 6, "batch_size": 2, "noise": "minibatch"},
        "grid": {"alpha": [0.0, 1.0, 2.0], "beta": [0.5, 1.0]},
    },
    "optimizers": [{"name": "gd", "lr": [0.1, 0.3]}, {"name": "muon", "lr": [0.01]}],
    "analysis": {"x": "alpha", "y": "beta"},
}


def cfg_with(**changes) -> dict:
    cfg = copy.deepcopy(BASE)
    for path, value in changes.items():
        *head, last = path.split("__")
        node = cfg
        for p in head:
            node = node.setdefault(p, {})
        node[last] = value
    return cfg


def refused(tmp_path, capsys, cfg: dict, *args) -> str:
    """Run the CLI on ``cfg``; assert exit 2, one line, no traceback, nothing written; the line."""
    path = tmp_path / "c.toml"
    path.write_text(toml(cfg))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet", *args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert not out.exists()
    return err[0]


# 6 cells (3 alpha x 2 beta); 40 steps logged at log_steps(40, 5)
CASES = {
    "cell id past the last": (cfg_with(analysis__cells=[0, 6]), "analysis.cells.1", "0..5"),
    "negative cell id": (cfg_with(analysis__cells=[-1]), "analysis.cells.0", "0..5"),
    "reversed rate window": (cfg_with(analysis__rate_window=[30, 10]), "analysis.rate_window", "t0 < t1"),
    "rate window past the steps": (cfg_with(analysis__rate_window=[10, 400]), "analysis.rate_window", "steps = 40"),
    "rate window from step 0": (cfg_with(analysis__rate_window=[0, 40]), "analysis.rate_window", "1 <= t0"),
    "rate window between logged steps": (
        cfg_with(analysis__rate_window=[21, 39]),
        "analysis.rate_window",
        "at least 2 logged steps",
    ),
    "unknown rate horizon": (cfg_with(analysis__rate_horizon="horizont"), "analysis.rate_horizon", "alpha"),
    "absurd steps": (cfg_with(steps=10**12), "steps", "1000000000"),
    "steps over the budget": (cfg_with(steps=10**9, seeds=list(range(20))), "steps", "max_run_steps"),
    "run-steps over the budget": (cfg_with(max_run_steps=1000), "steps", "max_run_steps = 1e+03"),
    "absurd log_points": (cfg_with(log_points=10**9), "log_points", "100000"),
    "arrays that fit no machine": (
        cfg_with(problem__fixed={"m": 10**6, "n": 10**6, "batch_size": 2, "noise": "minibatch"}),
        "problem.fixed.m = 1e+06, problem.fixed.n = 1e+06",
        "available",
    ),
    "a batch that fits no machine": (
        cfg_with(problem__fixed={"m": 4, "n": 6, "batch_size": 10**12, "noise": "minibatch"}),
        "problem.fixed.batch_size = 1e+12",
        "available",
    ),
    "over the memory budget": (cfg_with(max_memory_gb=1e-6), "problem.fixed", "max_memory_gb = 1e-06"),
    "empty cell list": (cfg_with(analysis__cells=[]), "analysis.cells", "no cells field"),
    "seed beyond int64": (cfg_with(seeds=[2**70]), "seeds.0", "less than"),
    "parameter beyond int64": (
        cfg_with(problem__fixed={"m": 10**20, "n": 6, "batch_size": 2, "noise": "minibatch"}),
        "problem.fixed.m",
        "int64",
    ),
    # 300,000 seeds: the duplicate check is linear, so the run count is refused at once
    "many seeds": (cfg_with(seeds=list(range(300_000))), "problem.grid", "at most 1,000,000"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_before_the_first_job(tmp_path, capsys, case):
    cfg, field, allowed = CASES[case]
    line = refused(tmp_path, capsys, cfg)
    assert line.startswith("muonlab: error: ") and field in line and allowed in line, line


def test_rate_window_with_two_logged_steps_is_accepted():
    logged = [int(s) for s in __import__("runners").log_steps(40, 5)]
    inner = [s for s in logged if s >= 1]
    cfg = parse_config(cfg_with(analysis__rate_window=[inner[-2], inner[-1]], analysis__cells=[0, 5]))
    assert cfg.analysis.rate_window == (inner[-2], inner[-1])


def test_budgets_leave_the_config_hash_of_older_sweeps_alone():
    base = parse_config(BASE)
    assert "max_run_steps" not in base.model_dump() and "max_memory_gb" not in base.model_dump()
    assert parse_config(cfg_with(max_memory_gb=4.0)).digest() != base.digest()


def test_memory_refusal_follows_the_available_memory(monkeypatch, tmp_path, capsys):
    """The same sweep passes with plenty of memory and is refused, naming the sizing fields and
    the machine's figure, when the machine has less than the estimated peak."""
    cfg = parse_config(BASE)
    jobs = plan(cfg, expand_runs(cfg))
    est = preflight.estimate(cfg, jobs)
    monkeypatch.setattr(preflight, "available_memory", lambda: est.peak_bytes + 1)
    preflight.preflight(cfg, jobs)
    monkeypatch.setattr(preflight, "available_memory", lambda: est.peak_bytes // 2)
    line = refused(tmp_path, capsys, BASE)
    assert "problem.fixed.m = 4" in line and "problem.fixed.n = 6" in line and "available" in line, line
    assert "problem.grid.alpha" not in line  # alpha does not size the arrays


def test_estimate_counts_runs_and_run_steps():
    cfg = parse_config(BASE)
    jobs = plan(cfg, expand_runs(cfg))
    est = preflight.estimate(cfg, jobs)
    runs = 3 * 2 * (2 + 1) * 2  # cells x lr points x seeds
    assert est.runs == runs and est.run_steps == runs * 40 and est.jobs == len(jobs)


SIZES = {  # the shipped presets' sizes (configs/), or the kind's defaults
    "power_law_lsq": dict(m=32, n=64, batch_size=16, noise="minibatch"),
    "quadratic": dict(m=16, n=16, hessian="low_rank", basis="rotated", rank=64),
    "linear_net": {},
    "assoc_memory": dict(items=64),
    "sample_lsq": {},
    "two_sided_lsq": {},
    "diagonal_abs": {},
    "pl_sine": {},
}


def test_every_kind_is_sized():
    assert set(SIZES) == set(problems.REGISTRY)


@pytest.mark.parametrize("kind", sorted(SIZES))
def test_job_estimate_bounds_the_measured_peak(kind):
    """The preflight's job figure is an upper bound of the memory the job really allocates
    (tracemalloc traces NumPy's allocations), for 40 runs of each kind."""
    cfg = parse_config(
        {
            "steps": 6,
            "log_points": 3,
            "seeds": list(range(40)),
            "problem": {"kind": kind, "fixed": SIZES[kind]},
            "optimizers": [{"name": "muon", "lr": [0.01]}],
        }
    )
    (spec,) = plan(cfg, expand_runs(cfg))
    tracemalloc.start()
    try:
        execute(spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= preflight.job_bytes(spec), (kind, peak, preflight.job_bytes(spec))


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(toml(BASE))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    runs = 3 * 2 * 3 * 2
    assert f"{runs} runs x 40 steps = {runs * 40:,} run-steps" in text
    assert "gd: " in text and "muon: " in text and "peak memory" in text and "time: ~" in text
    assert "runs.csv" in text and "curves.csv" in text and "manifest.json" in text
    assert not out.exists()
    # into a finished sweep: it says what is done, and changes nothing there
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    n_jobs = len(plan(parse_config(BASE), expand_runs(parse_config(BASE))))
    assert f"{n_jobs} of {n_jobs} jobs already done" in text
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def _config_error(tmp_path, capsys, target) -> str:
    assert main(["run", str(target), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert not (tmp_path / "out").exists()
    return err[0]


def test_unreadable_config_files(tmp_path, capsys):
    latin = tmp_path / "latin1.toml"
    latin.write_bytes(toml(BASE).replace("pre", "pr\xe9").encode("latin-1"))
    line = _config_error(tmp_path, capsys, latin)
    assert "config:" in line and str(latin) in line and "UTF-8" in line
    line = _config_error(tmp_path, capsys, tmp_path)
    assert "config:" in line and str(tmp_path) in line and "directory" in line
    line = _config_error(tmp_path, capsys, tmp_path / "missing.toml")
    assert "config:" in line and "missing.toml" in line and "no such file" in line


class _Interrupting(importlib.abc.MetaPathFinder):
    """Raises KeyboardInterrupt when ``name`` is imported (as Ctrl-C would, mid-import)."""

    def __init__(self, name):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.name:
            raise KeyboardInterrupt
        return None


def test_ctrl_c_during_start_up_is_one_line_and_130(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "lab.config")
    monkeypatch.setattr(sys, "meta_path", [_Interrupting("lab.config"), *sys.meta_path])
    assert main(["run", "configs/demo.toml", "--dry-run"]) == 130
    err = capsys.readouterr().err.splitlines()
    assert err == ["muonlab: interrupted during start-up; nothing more was written"]


def test_size_in_words():
    assert preflight.size(512 * 2**20) == "512 MiB" and preflight.size(3.25 * 2**30) == "3.2 GiB"
    assert math.isclose(float(preflight.size(1.5e3 * 2**30).split()[0]), 1.5e3)
