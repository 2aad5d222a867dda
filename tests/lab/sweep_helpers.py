"""Small sweep configs and grid comparisons shared by the executor, resume and fault tests."""

from __future__ import annotations

import copy
import csv
import io
import json
import math
from pathlib import Path

TIMING = {"job_wall_s"}  # timing columns: excluded from byte-for-byte comparisons
GRIDS = ("runs.csv", "curves.csv", "summary.csv", "phase.csv")


def lsq_sweep(name, description, optimizers, fixed, grid, *, steps, log_points, memory_budget_mb=None, analysis=None):
    """A two-seed sweep config on power-law least squares (``fixed``: its fixed parameters), in the
    key order a config file would have."""
    cfg = {"name": name, "description": description, "steps": steps, "log_points": log_points, "seeds": [0, 1]}
    if memory_budget_mb is not None:
        cfg["memory_budget_mb"] = memory_budget_mb
    cfg["problem"] = {"kind": "power_law_lsq", "fixed": fixed, "grid": grid}
    cfg["optimizers"] = optimizers
    if analysis is not None:
        cfg["analysis"] = analysis
    return cfg


# About a dozen jobs of one run each (the memory budget is below one run's working set), each a
# fraction of a second: enough for a worker or the whole process to die in the middle of one.
MANY_JOBS = lsq_sweep(
    "many_jobs",
    "twelve one-run jobs",
    [{"name": "gd", "lr": [0.1, 0.5]}, {"name": "muon", "lr": [0.01, 0.03]}],
    {"m": 6, "n": 10, "batch_size": 4, "noise": "minibatch", "label_noise": 0.3},
    {"alpha": [0.0, 1.0], "beta": [0.5]},
    steps=800,
    log_points=6,
    memory_budget_mb=1e-4,
    analysis={"x": "alpha"},
)


_REFERENCE: dict = {}


def reference_sweep(tmp_path_factory) -> tuple[Path, dict]:
    """An uninterrupted local sweep of MANY_JOBS, run once per test session (read-only)."""
    if "ref" not in _REFERENCE:
        from lab.api import run_sweep
        from lab.config import parse_config

        out = tmp_path_factory.mktemp("reference")
        res = run_sweep(parse_config(MANY_JOBS), out_dir=out, progress=False)
        assert res["complete"] and res["n_jobs"] >= 10
        _REFERENCE["ref"] = (out, res)
    return _REFERENCE["ref"]


def config(base=MANY_JOBS, **changes) -> dict:
    cfg = copy.deepcopy(base)
    cfg.update(changes)
    return cfg


def canonical(path: Path, drop=TIMING) -> list[str]:
    """The CSV's lines without the timing columns, sorted (header first)."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    keep = [i for i, c in enumerate(rows[0]) if c not in drop]
    lines = [",".join(r[i] for i in keep) for r in rows]
    return [lines[0], *sorted(lines[1:])]


def assert_same_grids(a: Path, b: Path) -> None:
    for name in GRIDS:
        assert canonical(a / name) == canonical(b / name), f"{name} differs between {a} and {b}"


def assert_every_run_once(out: Path, n_runs: int) -> None:
    runs = list(csv.DictReader(io.StringIO((out / "runs.csv").read_text())))
    ids = [int(r["run_id"]) for r in runs]
    assert sorted(ids) == list(range(n_runs)), "missing or duplicate run ids in runs.csv"
    curves = list(csv.DictReader(io.StringIO((out / "curves.csv").read_text())))
    keys = [(r["run_id"], r["step"]) for r in curves]
    assert len(keys) == len(set(keys)), "duplicate (run_id, step) rows in curves.csv"
    assert {int(k[0]) for k in keys} == set(range(n_runs))


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def toml(cfg: dict) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in cfg.items())
