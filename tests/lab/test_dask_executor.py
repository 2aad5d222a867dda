"""The dask executor: a real LocalCluster of two worker processes gives the local executor's
grids byte for byte, and a worker killed mid-sweep costs no run and duplicates none."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

import lab.api
from lab.api import run_sweep
from lab.config import parse_config
from lab.executors import local_cluster
from lab.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from sweep_helpers import MANY_JOBS, assert_every_run_once, assert_same_grids, reference_sweep

distributed = pytest.importorskip("distributed", reason="the dask extra (installed by `make test`)")


@pytest.fixture(scope="module", autouse=True)
def keep_environment():
    """dask's nannies export their workers' variables (OPENBLAS_NUM_THREADS=1, ...) into this
    process; do not let them leak into later tests' subprocesses."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def local_result(tmp_path_factory):
    return reference_sweep(tmp_path_factory)


def test_local_cluster_matches_local_executor(tmp_path, capsys, local_result):
    ref, res = local_result
    out = tmp_path / "dask"
    got = run_sweep(parse_config(MANY_JOBS), out_dir=out, executor="dask", workers=2, progress=True)
    assert got["complete"] and got["jobs_run_now"] == res["n_jobs"]
    err = capsys.readouterr().err
    assert "dask: 100%" in err and "run-step/s" in err  # the progress bar, with rate and ETA
    assert_same_grids(ref, out)
    assert_every_run_once(out, res["n_runs"])


def test_worker_killed_mid_sweep(tmp_path, monkeypatch, local_result):
    ref, res = local_result
    killed = []

    class KillAfterFirstJob(Store):
        """Right after the first job is written, SIGKILL a worker that is running a job."""

        client = None

        def record(self, outcome):
            super().record(outcome)
            if not killed:
                processing = self.client.processing()
                # a worker with a job in flight (there is one: 15 jobs are left), else any worker
                victim = next((w for w, keys in processing.items() if keys), next(iter(processing)))
                pid = self.client.run(os.getpid, workers=[victim])[victim]
                os.kill(pid, signal.SIGKILL)
                killed.append(victim)

    monkeypatch.setattr(lab.api, "Store", KillAfterFirstJob)
    with local_cluster(2) as cluster, distributed.Client(cluster) as client:
        KillAfterFirstJob.client = client
        # the workers run without dask's MALLOC_TRIM_THRESHOLD_ (it makes the jobs ~2.5x slower)
        assert set(client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {None}
        got = run_sweep(
            parse_config(MANY_JOBS), out_dir=tmp_path / "dask", executor="dask", client=client, progress=False
        )
        alive = set(client.scheduler_info()["workers"])
    assert killed and killed[0] not in alive  # the worker really died (its nanny started a new one)
    assert got["complete"] and got["failed_jobs"] == 0
    assert_every_run_once(tmp_path / "dask", res["n_runs"])
    assert_same_grids(ref, tmp_path / "dask")
