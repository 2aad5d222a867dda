"""Provenance: the manifest keeps the record of the session that computed the jobs, a later
session is appended (never overwrites it), the report shows the computing session's timings,
and ``reproduce`` writes its pages into its results directory unless asked for docs/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import analysis.figures
from lab.api import run_sweep
from lab.cli import main
from lab.config import parse_config

sys.path.insert(0, str(Path(__file__).parent))
from sweep_helpers import MANY_JOBS, config  # noqa: E402

TINY = config(MANY_JOBS, steps=8, seeds=[0], optimizers=[{"name": "gd", "lr": [0.1]}, {"name": "muon", "lr": [0.03]}])
TINY["problem"] = {**TINY["problem"], "grid": {"alpha": [0.0, 1.0], "beta": [0.5]}}
RECORD = ("started", "finished", "wall_s", "execute_wall_s", "git_revision", "host", "cpu", "perf_env", "versions")


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    monkeypatch.setattr(analysis.figures, "draw_standard", lambda an: None)


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_noop_resume_appends_a_session_and_keeps_the_record(tmp_path):
    out = tmp_path / "out"
    first = run_sweep(parse_config(TINY), out_dir=out, progress=False)
    m1 = manifest(out)
    assert [s["jobs_run"] for s in m1["sessions"]] == [first["n_jobs"]]
    s0 = m1["sessions"][0]
    assert s0["status"] == "complete" and s0["started"] == m1["started"] and s0["wall_s"] == m1["wall_s"]
    assert s0["git_revision"] == m1["git_revision"] and s0["host"]["cores"] >= 1 and "perf_env" in s0
    assert set(m1["job_sessions"].values()) == {0} and len(m1["job_sessions"]) == first["n_jobs"]

    again = run_sweep(parse_config(TINY), out_dir=out, progress=False)
    assert again["jobs_run_now"] == 0
    m2 = manifest(out)
    assert {k: m2.get(k) for k in RECORD} == {k: m1.get(k) for k in RECORD}  # the record is untouched
    assert m2["sessions"][0] == s0 and len(m2["sessions"]) == 2
    s1 = m2["sessions"][1]
    assert s1["jobs_run"] == 0 and s1["status"] == "complete" and s1["started"] >= s0["started"]
    assert s1["wall_s"] > 0 and s1["execute_wall_s"] == 0
    assert m2["job_sessions"] == m1["job_sessions"]

    # the report shows the computing session's timings, not the no-op's
    assert main(["report", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert f"| wall_s | {m1['wall_s']} |" in text and f"| started | {m1['started']} |" in text
    assert {"report.md", "report.html"} <= set(manifest(out)["outputs"])


def test_a_resume_that_computes_adds_its_time_and_owns_its_jobs(tmp_path):
    out = tmp_path / "out"
    run_sweep(parse_config(TINY), out_dir=out, progress=False)
    key = sorted(manifest(out)["jobs"])[0]
    (out / "parts" / f"{key}.done.json").unlink()  # that job never finished
    run_sweep(parse_config(TINY), out_dir=out, progress=False)
    m = manifest(out)
    s0, s1 = m["sessions"]
    assert s1["jobs_run"] == 1 and m["job_sessions"][key] == 1
    assert all(v == 0 for k, v in m["job_sessions"].items() if k != key)
    assert m["wall_s"] == round(s0["wall_s"] + s1["wall_s"], 3) and m["started"] == s0["started"]
    assert m["finished"] == s1["finished"]


def test_killed_session_is_kept_as_unfinished(tmp_path):
    out = tmp_path / "out"
    run_sweep(parse_config(TINY), out_dir=out, progress=False)
    m = manifest(out)
    m["sessions"].append({**m["sessions"][0], "status": "running", "finished": None, "wall_s": None, "jobs_run": 0})
    (out / "manifest.json").write_text(json.dumps(m))  # as a session killed at start-up leaves it
    run_sweep(parse_config(TINY), out_dir=out, progress=False)
    after = manifest(out)
    assert [s["status"] for s in after["sessions"]] == ["complete", "running", "complete"]
    assert after["wall_s"] == m["wall_s"]


CLAIM = """
name = "tiny_claim"
title = "GD beats SignSGD on a small PL problem"
source = "a test"
size = "1 cell x 1 lr x 2 seeds, seconds"
few_seeds_reason = "a provenance test, not a verdict"

[[rules]]
claim = "GD beats SignSGD"
kind = "pairwise_better"
params = { focus = "gd", rival = "signsgd" }

[sweep]
name = "tiny_claim"
steps = 20
log_points = 4
seeds = [0, 1]
[sweep.problem]
kind = "pl_sine"
[sweep.problem.fixed]
m = 3
n = 3
[[sweep.optimizers]]
name = "gd"
lr = [0.05]
[[sweep.optimizers]]
name = "signsgd"
lr = [0.01]
"""


def _tiny_claim(tmp_path: Path) -> Path:
    p = tmp_path / "tiny_claim.toml"
    p.write_text(CLAIM)
    return p


def test_reproduce_writes_pages_into_results_and_docs_only_when_asked(tmp_path, monkeypatch, capsys):
    preset = _tiny_claim(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["reproduce", str(preset), "--quiet"]) == 0
    printed = capsys.readouterr().out
    pages = Path("results/claims/pages")
    assert (pages / "claims" / "tiny_claim.md").exists() and (pages / "claims.md").exists()
    assert str(pages / "claims" / "tiny_claim.md") in printed
    assert not Path("docs").exists()  # tracked docs are never rewritten unless asked
    rec = json.loads((pages / "claims" / "tiny_claim.json").read_text())
    m = manifest(Path("results/claims/tiny_claim"))
    assert rec["wall_s"] == m["wall_s"] and rec["cpu"] == m["cpu"]
    # a no-op re-run keeps the computing session's runtime on the page
    assert main(["reproduce", str(preset), "--quiet", "--docs", "mydocs"]) == 0
    rec2 = json.loads(Path("mydocs/claims/tiny_claim.json").read_text())
    assert rec2["wall_s"] == rec["wall_s"] and Path("mydocs/claims.md").exists()
    assert len(manifest(Path("results/claims/tiny_claim"))["sessions"]) == 2


def test_reproduce_leaves_a_clean_checkout_clean(tmp_path):
    """The pages go to results/ (git-ignored), so later manifests do not say -dirty because of it."""
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "results/claims/pages/claims.md"], cwd=Path(__file__).parents[2]
    )
    assert ignored.returncode == 0


def test_directory_of_an_older_muonlab_is_recomputed_with_a_fresh_record(tmp_path):
    """Parts without indexes and a manifest without sessions (written before either existed):
    every job is computed again, and the record is that of the session that did it."""
    out = tmp_path / "out"
    run_sweep(parse_config(TINY), out_dir=out, progress=False)
    m = manifest(out)
    for key in ("sessions", "job_sessions", "files", "outputs"):
        del m[key]
    m.update(started="2020-01-01T00:00:00+00:00", git_revision="0" * 40)
    (out / "manifest.json").write_text(json.dumps(m))
    for idx in (out / "parts").glob("*.done.json"):
        idx.unlink()
    res = run_sweep(parse_config(TINY), out_dir=out, progress=False)
    assert res["jobs_run_now"] == res["n_jobs"]
    after = manifest(out)
    assert after["started"] == after["sessions"][0]["started"] != m["started"] and len(after["sessions"]) == 1
    assert after["git_revision"] != m["git_revision"]
