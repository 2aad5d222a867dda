"""Progress over run-steps: the run loop's feed adds up to B x steps and changes no value; the
local executor's bar counts run-steps and moves within a job; the analysis says each stage; a
no-op resume says there was nothing to run."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import problems
import runners
import runners.loop
import lab.executors
from lab.cli import main
from lab.config import parse_config
from lab.executors import EXECUTORS, StepCounter, finish
from lab.jobs import JobOutcome
from lab.plan import plan
from lab.store import Store
from lab.sweep import expand_runs

sys.path.insert(0, str(Path(__file__).parent))
from sweep_helpers import toml  # noqa: E402

SMALL = {
    "name": "progress",
    "steps": 30,
    "log_points": 4,
    "seeds": [0, 1],
    "problem": {
        "kind": "power_law_lsq",
        "fixed": {"m": 4, "n": 6, "batch_size": 2, "noise": "minibatch"},
        "grid": {"alpha": [0.0, 1.0]},
    },
    "optimizers": [{"name": "gd", "lr": [0.1, 0.3]}, {"name": "muon", "lr": [0.01, 0.03]}],
    "analysis": {"x": "alpha"},
}


def _problem_and_opt(runs=6):
    p = problems.make(
        "power_law_lsq", runs=runs, seed=np.arange(runs), m=4, n=6, batch_size=2, noise="minibatch", alpha=1.0
    )
    return p, runners.make("muon", lr=np.linspace(0.01, 0.05, runs))


@pytest.mark.parametrize("lanes", [1, 3])
def test_feed_adds_up_and_changes_nothing(monkeypatch, lanes):
    monkeypatch.setattr(runners.loop, "PROGRESS_EVERY", 0.0)  # report at every check (every 8th step)
    calls, lock = [], threading.Lock()

    def feed(n):
        with lock:
            calls.append(n)

    steps, runs = 45, 6
    p, opt = _problem_and_opt(runs)
    fed = runners.run(p, opt, steps=steps, seed=np.arange(runs), log_points=5, lanes=lanes, progress=feed)
    p, opt = _problem_and_opt(runs)
    plain = runners.run(p, opt, steps=steps, seed=np.arange(runs), log_points=5, lanes=lanes)
    assert sum(calls) == runs * steps and all(n > 0 for n in calls)
    assert len(calls) > lanes  # it moved within the run, not only at its end
    for k in plain.curves:
        np.testing.assert_array_equal(fed.curves[k], plain.curves[k])


def test_feed_is_throttled(monkeypatch):
    """The feed is looked at every 8th step and at logged steps only, never per step."""
    calls = []
    p, opt = _problem_and_opt(4)
    runners.run(p, opt, steps=200, seed=np.arange(4), log_points=5, lanes=1, progress=calls.append)
    assert sum(calls) == 4 * 200
    assert len(calls) <= 200 // 8 + len(runners.log_steps(200, 5)) + 1  # at most one per check, and the end


class _Bar:
    def __init__(self):
        self.n, self.updates = 0, []

    def update(self, k):
        self.n += k
        self.updates.append(k)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_finish_completes_the_job_on_the_bar(tmp_path):
    cfg = parse_config(SMALL)
    spec = plan(cfg, expand_runs(cfg))[0]
    bar = _Bar()
    counter = StepCounter(bar)
    counter(7)
    counter(5)
    failed = JobOutcome.failure(spec, RuntimeError("boom"))
    finish(Store(tmp_path), bar, failed, counter.counted)
    assert bar.n == spec.runs * spec.steps == failed.run_steps


def test_local_bar_counts_run_steps(tmp_path, capsys, monkeypatch):
    cfg = parse_config(SMALL)
    jobs = plan(cfg, expand_runs(cfg))
    total = sum(j.runs * j.steps for j in jobs)
    EXECUTORS["local"](jobs, Store(tmp_path / "a"), progress=True)
    err = capsys.readouterr().err
    assert f"{total}/{total}" in err and "run-step/s" in err and "local: 100%" in err
    # what the bar is fed: partial counts within each job, adding up to the run-steps
    monkeypatch.setattr(runners.loop, "PROGRESS_EVERY", 0.0)
    bar = _Bar()
    monkeypatch.setattr(lab.executors, "progress_bar", lambda jobs, progress, desc: bar)
    EXECUTORS["local"](jobs, Store(tmp_path / "b"), progress=True)
    assert bar.n == total
    assert len(bar.updates) > 2 * len(jobs) and max(bar.updates) < min(j.runs * j.steps for j in jobs)


def test_stage_lines_and_the_no_op_resume(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(toml(SMALL))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    stages = [line.split(" (")[0] for line in captured.err.splitlines() if line.startswith("analysis: ")]
    order = ["analysis: tuning", "analysis: phase tables", "analysis: theory overlays", "analysis: rates"]
    order += ["analysis: tables", "analysis: figures", "analysis: done in"]
    assert [next(s for s in stages if s.startswith(o)) for o in order] == [
        s for s in stages if any(s.startswith(o) for o in order)
    ]
    cfg = parse_config(SMALL)
    n_jobs, n_runs = len(plan(cfg, expand_runs(cfg))), 2 * 2 * 2 * 2  # optimizers x lrs x cells x seeds
    assert captured.err.splitlines()[0].startswith(
        f"plan: {n_jobs} jobs, {n_runs} runs x 30 steps = {n_runs * 30} run-steps"
    )
    assert "run-steps/s" in captured.out
    # the same command again: nothing to run, and no rate made of nothing
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert f"nothing to run, all {n_jobs} jobs were done" in captured.out and "run-steps/s" not in captured.out
    assert captured.err == ""  # --quiet: no bar, no stage lines
    # report: the same stage lines, then the page's
    assert main(["report", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    said = [line for line in err if line.startswith("analysis: ")]
    for o in order:
        assert any(line.startswith(o) for line in said), (o, said)
    assert said[-1].startswith("analysis: report")


def test_run_report_flag_writes_the_page(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(toml(SMALL))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet", "--report"]) == 0
    text = capsys.readouterr().out
    assert f"report: {out}/report.html" in text
    assert (out / "report.html").stat().st_size > 0 and (out / "report.md").exists()
