"""Malformed configs through the CLI: exit code 2, one line naming the field and what is allowed,
no traceback, nothing written (no output directory created; an existing one untouched)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from sweep_helpers import toml  # noqa: E402

BASE = {
    "name": "bad",
    "steps": 5,
    "log_points": 3,
    "seeds": [0, 1],
    "problem": {
        "kind": "power_law_lsq",
        "fixed": {"m": 3, "n": 4, "batch_size": 2, "noise": "minibatch"},
        "grid": {"alpha": [0.0, 1.0], "beta": {"linspace": [0.0, 1.0, 2]}},
    },
    "optimizers": [
        {"name": "gd", "lr": [0.1, 1.0]},
        {"name": "muon", "lr": {"logspace": [-2, -1, 2]}, "hparams": {"beta": 0.9}},
    ],
    "analysis": {"x": "alpha", "y": "beta"},
}


def mutate(fn):
    def make():
        cfg = copy.deepcopy(BASE)
        fn(cfg)
        return toml(cfg)

    return make


def setp(path: str, value):
    """A config with ``value`` at the dotted ``path`` (list indices as numbers)."""

    def fn(cfg):
        *head, last = path.split(".")
        node = cfg
        for p in head:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        node[int(last) if isinstance(node, list) else last] = value

    return mutate(fn)


def setps(**values):
    """Several setp at once (keys with __ for dots)."""

    def fn(cfg):
        for path, value in values.items():
            *head, last = path.split("__")
            node = cfg
            for p in head:
                node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
            node[last] = value

    return mutate(fn)


def delp(path: str):
    def fn(cfg):
        *head, last = path.split(".")
        node = cfg
        for p in head:
            node = node[int(p)] if isinstance(node, list) else node[p]
        del node[last]

    return mutate(fn)


# name: (config text factory, field the message must name, words of what is allowed)
CASES = {
    # unknown keys, at every level
    "unknown top-level key": (setp("stepz", 10), "stepz", "allowed: name"),
    "unknown problem key": (setp("problem.grids", {}), "problem.grids", "allowed: kind"),
    "unknown optimizer key": (setp("optimizers.0.lrs", [0.1]), "optimizers.0.lrs", "allowed: name"),
    "unknown analysis key": (setp("analysis.colour", "red"), "analysis.colour", "allowed: focus"),
    "unknown grid spec key": (
        setp("problem.grid.alpha", {"linspace": [0, 1, 2], "base": 2}),
        "problem.grid.alpha",
        "linspace",
    ),
    "unknown grid spec": (setp("problem.grid.alpha", {"range": [0, 1]}), "problem.grid.alpha", "linspace"),
    "unknown problem parameter": (setp("problem.fixed.gamma", 1.0), "problem.fixed.gamma", "alpha"),
    "unknown hyperparameter": (setp("optimizers.0.hparams", {"momentum": 0.9}), "optimizers.0.hparams.momentum", "lr"),
    # wrong types
    "steps as string": (setp("steps", "100"), "steps", "integer"),
    "steps as float": (setp("steps", 2.5), "steps", "integer"),
    "steps as bool": (setp("steps", True), "steps", "integer"),
    "seeds not a list": (setp("seeds", 0), "seeds", "list"),
    "seed as float": (setp("seeds", [0.5]), "seeds.0", "integer"),
    "name not a string": (setp("name", 5), "name", "string"),
    "description not a string": (setp("description", ["x"]), "description", "string"),
    "problem not a table": (setp("problem", "power_law_lsq"), "problem", "table"),
    "optimizers not a list": (setp("optimizers", {"name": "gd", "lr": 0.1}), "optimizers", "list"),
    "int parameter as float": (setp("problem.fixed.m", 2.5), "problem.fixed.m", "integer"),
    "int parameter as string": (setp("problem.fixed.n", "64"), "problem.fixed.n", "integer"),
    "bool parameter as string": (setp("problem.grid.rotate", ["yes"]), "problem.grid.rotate", "true or false"),
    "float parameter as bool": (setp("problem.grid.beta", [True]), "problem.grid.beta", "number"),
    "bool hparam as int": (setp("optimizers.1.hparams.nesterov", 1), "optimizers.1.hparams.nesterov", "true or false"),
    "lr as string": (setp("optimizers.0.lr", "fast"), "optimizers.0.lr", "number"),
    "nested list grid": (setp("problem.grid.alpha", [[0.0, 1.0]]), "problem.grid.alpha", "list of values"),
    # missing fields
    "missing steps": (delp("steps"), "steps", "required"),
    "missing problem": (delp("problem"), "problem", "required"),
    "missing problem kind": (delp("problem.kind"), "problem.kind", "required"),
    "missing lr": (delp("optimizers.0.lr"), "optimizers.0.lr", "required"),
    # empty or non-positive grids and counts
    "zero steps": (setp("steps", 0), "steps", "greater than 0"),
    "negative steps": (setp("steps", -3), "steps", "greater than 0"),
    "empty seeds": (setp("seeds", []), "seeds", "at least 1"),
    "duplicate seeds": (setp("seeds", [0, 0]), "seeds", "distinct"),
    "negative seed": (setp("seeds", [-1]), "seeds.0", "greater than or equal to 0"),
    "no optimizers": (setp("optimizers", []), "optimizers", "at least 1"),
    "empty problem grid": (setp("problem.grid.alpha", []), "problem.grid.alpha", "at least one value"),
    "empty lr grid": (setp("optimizers.0.lr", []), "optimizers.0.lr", "at least one value"),
    "linspace of zero points": (
        setp("problem.grid.alpha", {"linspace": [0, 1, 0]}),
        "problem.grid.alpha",
        "integer >= 1",
    ),
    "linspace of two entries": (
        setp("problem.grid.alpha", {"linspace": [0, 1]}),
        "problem.grid.alpha",
        "[start, stop, count]",
    ),
    "logspace fractional count": (
        setp("optimizers.0.lr", {"logspace": [-2, 0, 2.5]}),
        "optimizers.0.lr",
        "integer >= 1",
    ),
    "huge grid": (setp("problem.grid.alpha", {"linspace": [0, 1, 1e9]}), "problem.grid.alpha", "at most"),
    "duplicate grid values": (setp("problem.grid.alpha", [0.5, 0.5]), "problem.grid.alpha", "distinct"),
    "log_points below 2": (setp("log_points", 1), "log_points", "greater than or equal to 2"),
    "zero memory budget": (setp("memory_budget_mb", 0), "memory_budget_mb", "greater than 0"),
    # out-of-range parameters, NaN and inf
    "target zero": (setp("target", 0.0), "target", "greater than 0"),
    "target above one": (setp("target", 1.5), "target", "less than 1"),
    "divergence factor one": (setp("divergence_factor", 1.0), "divergence_factor", "greater than 1"),
    "target nan": (setp("target", float("nan")), "target", "finite"),
    "zero m": (setp("problem.fixed.m", 0), "problem.fixed.m", ">= 1"),
    "negative alpha": (setp("problem.grid.alpha", [-1.0]), "problem.grid.alpha", ">= 0"),
    "nan sigma": (setp("problem.fixed.sigma", float("nan")), "problem.fixed.sigma", ">= 0"),
    "inf alpha": (setp("problem.grid.alpha", [0.0, float("inf")]), "problem.grid.alpha", ">= 0"),
    "zero lr": (setp("optimizers.0.lr", [0.0, 0.1]), "optimizers.0.lr", "> 0"),
    "nan lr": (setp("optimizers.0.lr", float("nan")), "optimizers.0.lr", "> 0"),
    "momentum above one": (setp("optimizers.1.hparams.beta", 1.5), "optimizers.1.hparams.beta", "<= 0.999999"),
    # unknown names (listing the valid ones)
    "unknown problem": (setp("problem.kind", "rosenbrock"), "problem.kind", "power_law_lsq"),
    "unknown optimizer": (setp("optimizers.0.name", "adamw"), "optimizers.0.name", "muon"),
    "unknown orth": (setp("optimizers.1.hparams.orth", "qr"), "optimizers.1.hparams.orth", "ns_keller"),
    "unknown dtype": (setp("dtype", "float16"), "dtype", "float32"),
    "unknown backend": (setp("backend", "jax"), "backend", "numpy"),
    "unknown criterion": (setp("analysis.criterion", "fastest"), "analysis.criterion", "final_gap"),
    # inconsistent configs
    "fixed parameter with several values": (setp("problem.fixed.m", [3, 4]), "problem.fixed.m", "problem.grid"),
    "parameter fixed and swept": (setp("problem.fixed.alpha", 1.0), "problem.grid.alpha", "one place"),
    "lr among hparams": (setp("optimizers.0.hparams", {"lr": 0.1}), "optimizers.0.hparams.lr", "optimizers.0.lr"),
    "duplicate labels": (setp("optimizers.1", {"name": "gd", "lr": 0.5}), "optimizers.1.label", "distinct"),
    "empty label": (setp("optimizers.0.label", ""), "optimizers.0.label", "letters"),
    "label with a slash": (setp("optimizers.0.label", "a/b"), "optimizers.0.label", "letters"),
    "focus not an optimizer": (setp("analysis.focus", "adam"), "analysis.focus", "gd, muon"),
    "axis not swept": (setp("analysis.x", "m"), "analysis.x", "alpha, beta"),
    "same axis twice": (setp("analysis.y", "alpha"), "analysis.y", "beta"),
    # constraints between parameters that only the problem's constructor knows (caught before
    # anything runs: every cell is built once at validation)
    "minibatch without noise kind": (
        setp("problem.fixed.noise", "none"),
        "problem.fixed.batch_size",
        "noise = 'minibatch'",
    ),
    "sigma without noise kind": (
        setps(problem__fixed__noise="none", problem__fixed__batch_size=0, problem__grid__sigma=[0.0, 0.5]),
        "problem.grid.sigma",
        "'gaussian'",
    ),
    # not TOML at all
    "bad toml": (lambda: "steps = = 3\n", "config", "TOML"),
}


def run_cli(capsys, argv):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_config(tmp_path, capsys, case):
    make, field, allowed = CASES[case]
    cfg = tmp_path / "c.toml"
    cfg.write_text(make())
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, ["run", str(cfg), "--out", str(out), "--quiet"])
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    msg = lines[0]
    assert msg.startswith("muonlab: error: "), msg
    body = msg.removeprefix("muonlab: error: ")
    assert body.split(":")[0] == field, msg
    assert allowed in body, msg
    assert not out.exists()


def test_enough_distinct_cases():
    assert len(CASES) >= 30
    assert len({make() for make, _, _ in CASES.values()}) == len(CASES)


def test_base_config_is_valid():
    import tomllib

    from lab.config import parse_config

    parse_config(tomllib.loads(toml(BASE)))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished sweep of BASE, for the "existing directory untouched" checks."""
    d = tmp_path_factory.mktemp("finished")
    (d / "c.toml").write_text(toml(BASE))
    assert main(["run", str(d / "c.toml"), "--out", str(d / "out"), "--quiet"]) == 0
    return d / "out"


def snapshot(d):
    return {p.relative_to(d): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", ["zero steps", "unknown optimizer", "duplicate seeds"])
def test_existing_directory_untouched(tmp_path, capsys, finished, case):
    before = snapshot(finished)
    cfg = tmp_path / "c.toml"
    cfg.write_text(CASES[case][0]())
    code, _, err = run_cli(capsys, ["run", str(cfg), "--out", str(finished), "--quiet"])
    assert code == 2 and "Traceback" not in err
    assert snapshot(finished) == before


def test_changed_config_refused_unless_forced(tmp_path, capsys, finished):
    before = snapshot(finished)
    cfg = tmp_path / "c.toml"
    cfg.write_text(setp("steps", 6)())
    code, _, err = run_cli(capsys, ["run", str(cfg), "--out", str(finished), "--quiet"])
    assert code == 2 and "different config" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert snapshot(finished) == before
    forced = tmp_path / "forced"
    shutil.copytree(finished, forced)
    assert main(["run", str(cfg), "--out", str(forced), "--quiet", "--force"]) == 0
    manifest = json.loads((forced / "manifest.json").read_text())
    assert manifest["config"]["steps"] == 6 and manifest["jobs_run_now"] == manifest["n_jobs"]
    old_jobs = {p.name for p in (finished / "parts").iterdir()}
    assert not old_jobs & {p.name for p in (forced / "parts").iterdir()}  # the old parts were discarded


@pytest.mark.parametrize(
    "argv, field",
    [
        (["--executor", "spark"], "executor"),
        (["--scheduler", "tcp://127.0.0.1:1"], "scheduler"),  # only an option of the dask executor
        (["--executor", "dask", "--workers", "0"], "workers"),
        (["--executor", "dask", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "workers"),
    ],
)
def test_bad_executor_options(tmp_path, capsys, argv, field):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(BASE))
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, ["run", str(cfg), "--out", str(out), "--quiet", *argv])
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.split(": ")[2].startswith(field), err
    assert not out.exists()


def test_missing_dask_names_the_extra(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name, *a))
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(BASE))
    code, _, err = run_cli(capsys, ["run", str(cfg), "--out", str(tmp_path / "out"), "--executor", "dask"])
    assert code == 2 and "muonlab[dask]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_real_entry_point_exit_code(tmp_path):
    """The installed command (not only main()) exits 2 with one line."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(CASES["unknown problem"][0]())
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", "run", str(cfg), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


# --- files: damaged or foreign directories and manifests (report, status, run --out, presets, reproduce)
def _put(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _edit_manifest(d, fn):
    m = json.loads((d / "manifest.json").read_text())
    fn(m)
    (d / "manifest.json").write_text(json.dumps(m))


def _dir_instead(path):
    path.unlink()
    path.mkdir()


FILE_CASES = {
    # name: (damage the copy d of a finished sweep, argv given d and the tmp dir, what the line names)
    "report: manifest is a list": (lambda d: _put(d / "manifest.json", "[1, 2]"), "report", "manifest.json"),
    "report: manifest is a number": (lambda d: _put(d / "manifest.json", "42"), "report", "manifest.json"),
    "report: manifest not UTF-8": (lambda d: _put(d / "manifest.json", b"\xff\xfe{"), "report", "manifest.json"),
    "report: manifest is a directory": (lambda d: _dir_instead(d / "manifest.json"), "report", "manifest.json"),
    "report: bad analysis option in manifest": (
        lambda d: _put(d / "manifest.json", (d / "manifest.json").read_text().replace('"final_gap"', '"fastest"')),
        "report",
        "config.analysis.criterion",
    ),
    "report: truncated runs.csv": (lambda d: _half(d / "runs.csv"), "report", "runs.csv"),
    "report: runs.csv header only": (lambda d: _put(d / "runs.csv", "run_id,cell_id\n"), "report", "runs.csv"),
    "report: runs.csv not UTF-8": (lambda d: _put(d / "runs.csv", b"run_id\n\xe9\n"), "report", "runs.csv"),
    "report: curves.csv is a directory": (lambda d: _dir_instead(d / "curves.csv"), "report", "curves.csv"),
    "report: spectra.csv deleted": (lambda d: (d / "spectra.csv").unlink(), "report", "spectra.csv"),
    "status: job counts garbled": (
        lambda d: _edit_manifest(d, lambda m: m.update(jobs={k: "two" for k in m["jobs"]})),
        "status",
        "manifest.json",
    ),
    "status: parts is a file": (lambda d: (shutil.rmtree(d / "parts"), _put(d / "parts", "x")), "status", "parts"),
    "run: parts is a file": (lambda d: (shutil.rmtree(d / "parts"), _put(d / "parts", "x")), "run", "parts"),
    "run: runs.csv is a directory": (lambda d: _dir_instead(d / "runs.csv"), "run", "runs.csv"),
    "run: manifest is null": (lambda d: _put(d / "manifest.json", "null"), "run", "manifest.json"),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_damaged_or_foreign_files(tmp_path, capsys, finished, case):
    damage, command, named = FILE_CASES[case]
    d = tmp_path / "sweep"
    shutil.copytree(finished, d)
    damage(d)
    before = snapshot(d)
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(BASE))
    argv = ["run", str(cfg), "--out", str(d), "--quiet"] if command == "run" else [command, str(d)]
    code, _, err = run_cli(capsys, argv)
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("analysis:")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("muonlab: error:"), err
    assert named in lines[0] and str(d) in lines[0]
    assert snapshot(d) == before  # refused: nothing written, nothing deleted


@pytest.mark.parametrize(
    "argv, named",
    [
        (lambda t: ["presets", str(t / "nowhere")], "nowhere"),
        (lambda t: ["presets", str(t / "c.toml")], "c.toml"),
        (lambda t: ["reproduce", "no_such_claim"], "no_such_claim"),
        (lambda t: ["reproduce", str(t / "missing.toml")], "missing.toml"),
        (lambda t: ["reproduce", str(t / "c.toml")], "c.toml"),  # a sweep config, not a claim
        (lambda t: ["reproduce", str(t / "latin1.toml")], "latin1.toml"),
        (lambda t: ["run", str(t / "c.toml"), "--out", str(t / "c.toml" / "sub")], "c.toml"),
        (lambda t: ["run", str(t / "c.toml"), "--out", "/proc/muonlab-out"], "/proc/muonlab-out"),
    ],
    ids=[
        "presets-missing",
        "presets-file",
        "claim-unknown",
        "claim-missing",
        "claim-not-a-claim",
        "claim-latin1",
        "out-under-file",
        "out-unwritable",
    ],
)
def test_bad_paths(tmp_path, capsys, argv, named):
    (tmp_path / "c.toml").write_text(toml(BASE))
    (tmp_path / "latin1.toml").write_bytes(b"name = '\xe9'\n")
    code, _, err = run_cli(capsys, argv(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1 and named in err, err
