"""``lab.run_sweep``: config -> sweep -> plan -> executor -> store -> analysis (docs/design.md)."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

import analysis

from . import provenance
from .backend import BackendError, get_backend
from .config import SweepConfig, load_config, parse_config
from .errors import ConfigError
from .executors import EXECUTORS
from .plan import plan
from .store import Store
from .sweep import expand_runs


def _resolve(config, backend, dtype) -> SweepConfig:
    cfg = config if isinstance(config, SweepConfig) else load_config(config)
    over = {k: v for k, v in (("backend", backend), ("dtype", dtype)) if v is not None}
    if over:
        cfg = parse_config({**cfg.model_dump(mode="json", exclude_none=True), **over})
    return cfg


def run_sweep(config, out_dir="results/sweep", backend: str | None = None, dtype: str | None = None,
              executor: str = "local", force: bool = False, progress: bool = True, **executor_options) -> dict:
    """Run the sweep described by ``config`` (a TOML path or a SweepConfig) into ``out_dir``.

    Finished jobs found in ``out_dir`` are skipped (resume). Returns a dict with the paths of the
    written files and counts.
    """
    t0 = time.perf_counter()
    cfg = _resolve(config, backend, dtype)
    if executor not in EXECUTORS:
        raise ConfigError(f"executor: unknown {executor!r}; allowed: {', '.join(EXECUTORS)}")
    try:
        bk = get_backend(cfg.backend, cfg.dtype)
    except BackendError as e:
        raise ConfigError(str(e)) from None
    runs = expand_runs(cfg)
    jobs = plan(cfg, runs)
    store = Store(out_dir)
    store.begin(cfg.digest(), force)
    manifest = {
        "config": cfg.model_dump(mode="json"),
        "config_hash": cfg.digest(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": "running",
        "n_runs": len(runs),
        "n_jobs": len(jobs),
        "versions": provenance.versions(),
        "blas": provenance.blas(),
        "git_revision": provenance.git_revision(),
        "host": provenance.host(),
        **bk.info,
        "executor": executor,
    }
    store.write_manifest(manifest)
    done = store.done()
    pending = [j for j in jobs if j.key not in done]
    t_exec = time.perf_counter()
    EXECUTORS[executor](pending, store, progress=progress, **executor_options)
    t_exec = time.perf_counter() - t_exec

    keys = [j.key for j in jobs]
    results = store.read_parts("runs", keys)
    table = runs.merge(results, on="run_id", how="left", validate="one_to_one").sort_values("run_id")
    curves = store.read_parts("curves", keys).sort_values(["run_id", "step"], kind="stable")
    paths = {"runs": store.write_table("runs", table), "curves": store.write_table("curves", curves)}
    manifest.update(status="complete", finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    jobs_run_now=len(pending), execute_wall_s=round(t_exec, 3))
    store.write_manifest(manifest)
    paths.update(analysis.analyze(store.dir))
    manifest["wall_s"] = round(time.perf_counter() - t0, 3)
    store.write_manifest(manifest)
    paths["manifest"] = store.manifest_path
    return {"paths": paths, "n_runs": len(runs), "n_jobs": len(jobs), "jobs_run_now": len(pending),
            "steps": cfg.steps, "wall_s": manifest["wall_s"], "execute_wall_s": t_exec,
            "diverged": int((table["status"] != "ok").sum())}


def cells_table(config) -> pd.DataFrame:
    from .sweep import cells

    return cells(_resolve(config, None, None))
