"""Resume: a sweep killed with SIGKILL at random moments, several times, then re-run to completion,
gives the grids of an uninterrupted run, every run id exactly once; status reports the partial
sweep in between."""

from __future__ import annotations

import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lab.api import run_sweep, sweep_status
from lab.config import parse_config

sys.path.insert(0, str(Path(__file__).parent))
from sweep_helpers import MANY_JOBS, assert_every_run_once, assert_same_grids, reference_sweep, toml  # noqa: E402


def start(cfg: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "run", str(cfg), "--out", str(out), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def finished_parts(out: Path) -> int:
    return len(list((out / "parts").glob("*.done.json"))) if (out / "parts").exists() else 0


def wait_for_parts(proc: subprocess.Popen, out: Path, n: int) -> None:
    """Poll until ``n`` parts exist or the process ends (no deadline: pytest's own timeout rules)."""
    while finished_parts(out) < n and proc.poll() is None:
        time.sleep(0.01)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted sweep."""
    return reference_sweep(tmp_path_factory)


def test_kill9_at_random_moments_then_resume(tmp_path, reference):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(MANY_JOBS))
    ref_dir, ref = reference
    job_s = statistics.median(pd.read_csv(ref_dir / "runs.csv").groupby("job")["job_wall_s"].first())
    out = tmp_path / "out"
    rng = random.Random(20240607)
    for attempt in range(5):
        proc = start(cfg, out)
        if attempt == 0:
            time.sleep(rng.uniform(0.0, 1.0))  # anywhere: start-up, validation, the first jobs
        else:
            # some way into this attempt's jobs: after 1-2 more parts, plus a random fraction of a job
            wait_for_parts(proc, out, finished_parts(out) + rng.randint(1, 2))
            time.sleep(rng.uniform(0.0, 1.5 * job_s))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        if attempt == 2 and (out / "manifest.json").exists():
            st = sweep_status(out)
            assert st["jobs"]["done"] + st["jobs"]["pending"] + st["jobs"]["failed"] == ref["n_jobs"]
            assert st["runs"]["total"] == ref["n_runs"] and st["jobs"]["failed"] == 0
    partial = finished_parts(out)

    final = subprocess.run(
        [sys.executable, "-m", "lab.cli", "run", str(cfg), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert final.returncode == 0, final.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["jobs_run_now"] == ref["n_jobs"] - partial  # finished jobs were not run again
    assert not list((out / "parts").glob(".*.tmp"))  # temp files of killed writers were swept up
    assert_every_run_once(out, ref["n_runs"])
    assert_same_grids(ref_dir, out)
    want = {"done": ref["n_jobs"], "pending": 0, "failed": 0, "damaged": 0, "total": ref["n_jobs"]}
    assert sweep_status(out)["jobs"] == want


def test_rerun_redoes_only_unfinished_jobs(tmp_path, reference):
    """A deterministic partial state: jobs whose index was never written (a kill after some of
    their parts) and a stray temp file, as a kill leaves them. The re-run runs exactly those jobs
    again."""
    cfg = parse_config(MANY_JOBS)
    ref_dir, ref = reference
    out = tmp_path / "out"
    shutil.copytree(ref_dir, out)
    parts = sorted((out / "parts").glob("*.done.json"))
    for p in parts[:3]:
        p.unlink()  # jobs never finished (the index, written last, marks completion)
    (out / "parts" / ".x.runs.csv.123.tmp").write_text("run_id\n")  # a writer killed mid-write
    st = sweep_status(out)
    assert st["jobs"] == {"done": ref["n_jobs"] - 3, "pending": 3, "failed": 0, "damaged": 0, "total": ref["n_jobs"]}
    again = run_sweep(cfg, out_dir=out, progress=False)
    assert again["jobs_run_now"] == 3 and again["complete"]
    assert not list((out / "parts").glob(".*.tmp"))
    assert_every_run_once(out, ref["n_runs"])
    assert_same_grids(ref_dir, out)
    assert run_sweep(cfg, out_dir=out, progress=False)["jobs_run_now"] == 0
