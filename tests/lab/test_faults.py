"""Numerical and job faults, determinism, and the status / presets commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lab.jobs
from lab.api import run_sweep, sweep_status
from lab.cli import main
from lab.config import parse_config
from lab.executors import EXECUTORS
from lab.plan import plan
from lab.store import Store
from lab.sweep import expand_runs

sys.path.insert(0, str(Path(__file__).parent))
from sweep_helpers import GRIDS, assert_every_run_once, config, lsq_sweep, toml  # noqa: E402

OPTIMIZERS = [
    {"name": "gd", "lr": [0.05, 0.3]},
    {"name": "signsgd", "lr": [0.001, 0.01], "hparams": {"beta": 0.5}},
    {"name": "muon", "lr": [0.01, 0.05]},
]
LSQ = {"m": 4, "n": 6, "batch_size": 3, "noise": "minibatch", "label_noise": 0.2}
SMALL = lsq_sweep(
    "small", "three optimizers, two cells", OPTIMIZERS, LSQ, {"alpha": [0.0, 1.0]}, steps=60, log_points=6
)
HUGE_LR = 1e4
RUN_KEY = ["optimizer", "cell_id", "seed", "h_lr"]
NOT_COMPARED = {"run_id", "job", "job_wall_s"}


def read_text_table(path: Path) -> pd.DataFrame:
    """A CSV with every cell as its exact text (so equality below is bit-for-bit)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def with_huge_lr(cfg: dict) -> dict:
    cfg = config(cfg)
    cfg["optimizers"] = [{**o, "lr": sorted([*o["lr"], HUGE_LR])} for o in cfg["optimizers"]]
    return cfg


@pytest.fixture(scope="module")
def calm(tmp_path_factory):
    """A sweep of SMALL (no run diverges)."""
    out = tmp_path_factory.mktemp("calm")
    return out, run_sweep(parse_config(SMALL), out_dir=out, progress=False)


def test_diverging_runs_leave_their_neighbours_bit_identical(tmp_path, calm):
    calm_dir, calm = calm
    wild = run_sweep(parse_config(with_huge_lr(SMALL)), out_dir=tmp_path / "wild", progress=False)
    assert calm["n_jobs"] == wild["n_jobs"] == 3  # the diverging runs share each job with the others
    runs_c, runs_w = read_text_table(calm_dir / "runs.csv"), read_text_table(tmp_path / "wild/runs.csv")
    huge = runs_w["h_lr"].astype(float) == HUGE_LR
    assert (runs_w.loc[huge, "status"] == "diverged").all() and huge.sum() == 3 * 2 * 2
    assert (runs_c["status"] == "ok").all()
    cols = [c for c in runs_c.columns if c not in NOT_COMPARED]
    neighbours = runs_w.loc[~huge, cols].sort_values(RUN_KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(neighbours, runs_c[cols].sort_values(RUN_KEY).reset_index(drop=True))

    def keyed_curves(d: Path, runs: pd.DataFrame) -> pd.DataFrame:
        curves = read_text_table(d / "curves.csv")
        return curves.merge(runs[["run_id", *RUN_KEY]], on="run_id").drop(columns="run_id")

    cw = keyed_curves(tmp_path / "wild", runs_w[~huge])
    cc = keyed_curves(calm_dir, runs_c)
    order = [*RUN_KEY, "step"]
    pd.testing.assert_frame_equal(
        cw.sort_values(order).reset_index(drop=True), cc.sort_values(order).reset_index(drop=True)
    )
    # the frozen runs hold finite values (their last good parameters)
    assert np.isfinite(runs_w.loc[huge, "final_gap"].astype(float)).all()


def test_same_config_and_seed_give_identical_csvs(tmp_path, calm):
    a_dir, a = calm
    b = run_sweep(parse_config(SMALL), out_dir=tmp_path / "b", progress=False)
    assert a["complete"] and b["complete"]
    for name in GRIDS:
        ta, tb = (read_text_table(d / name) for d in (a_dir, tmp_path / "b"))
        ta, tb = (t.drop(columns=[c for c in t.columns if c == "job_wall_s"]) for t in (ta, tb))
        pd.testing.assert_frame_equal(ta, tb, obj=name)
        if name != "runs.csv":  # no timing column: the files themselves are byte-identical
            assert (a_dir / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    m = json.loads((a_dir / "manifest.json").read_text())
    for key in ("versions", "backend", "dtype", "blas", "git_revision", "config_hash", "host"):
        assert key in m, key
    assert m["backend"] == "numpy" and m["dtype"] == "float32" and "numpy" in m["versions"]
    assert isinstance(m["blas"], list)


def test_failing_job_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch, capsys):
    cfg_dict = config(SMALL, memory_budget_mb=1e-4)  # one run per job
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(cfg_dict))
    keys = [j.key for j in plan(parse_config(cfg_dict), expand_runs(parse_config(cfg_dict)))]
    victim = keys[5]
    real = lab.jobs.execute

    def flaky(spec, progress=None):
        if spec.key == victim:
            raise FloatingPointError("overflow in the victim job")
        return real(spec, progress)

    monkeypatch.setattr(lab.jobs, "execute", flaky)
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert (
        f"1 of {len(keys)} jobs failed" in err
        and "muonlab status" in err
        and "Traceback" not in err.split("failed:")[0]
    )
    assert not (out / "runs.csv").exists()  # grids only from complete sweeps
    assert json.loads((out / "manifest.json").read_text())["status"] == "incomplete"
    assert len(list((out / "parts").glob("*.runs.csv"))) == len(keys) - 1  # the others all ran

    assert main(["status", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"jobs: {len(keys) - 1} done, 0 pending, 1 failed (of {len(keys)})" in text
    assert f"failed {victim}: FloatingPointError: overflow in the victim job" in text
    st = sweep_status(out)
    assert st["runs"]["failed"] == 1 and st["runs"]["done"] + 1 == st["runs"]["total"]

    monkeypatch.setattr(lab.jobs, "execute", real)  # the fault is gone: a re-run retries that job only
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert "1 run now" in capsys.readouterr().out
    assert sweep_status(out)["jobs"]["failed"] == 0 and not list((out / "parts").glob("*.failed.json"))
    assert_every_run_once(out, st["runs"]["total"])


def test_status_of_a_non_sweep_directory(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("muonlab: error: dir:") and "manifest.json" in err and len(err.splitlines()) == 1


def test_presets_lists_configs_with_their_description(tmp_path, capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    demo = [line for line in lines if line.split()[0].endswith("configs/demo.toml")]
    assert len(demo) == 1 and "Muon vs SignSGD vs GD" in demo[0]
    (tmp_path / "a.toml").write_text('description = """two\nlines"""\nsteps = 3\n')
    (tmp_path / "b.toml").write_text("steps = = 3\n")
    (tmp_path / "c.toml").write_text("steps = 3\n")
    assert main(["presets", str(tmp_path)]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header == "sweep presets: muonlab run PATH" and len(lines) == 3
    assert lines[0].endswith("two lines") and "unreadable" in lines[1] and "(no description)" in lines[2]


def test_progress_bar_shows_rate_and_eta(tmp_path, capsys):
    cfg = parse_config(config(SMALL, steps=5))
    jobs = plan(cfg, expand_runs(cfg))
    store = Store(tmp_path)
    EXECUTORS["local"](jobs, store, progress=True)
    err = capsys.readouterr().err
    assert "local: 100%" in err and "run-step/s" in err and "<" in err  # tqdm: [elapsed<remaining, rate]
    assert store.done() == {j.key for j in jobs}


def test_executor_registry():
    assert {"local", "dask"} <= set(EXECUTORS)
    assert EXECUTORS["dask"].options == ("scheduler", "workers", "client")
    with pytest.raises(Exception, match="executor: got 'ray'; allowed: dask, local"):
        run_sweep(parse_config(SMALL), out_dir="/nonexistent/never", executor="ray")
