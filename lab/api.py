"""``lab.run_sweep``: config -> sweep -> plan -> executor -> store -> analysis (docs/design.md);
``lab.api.sweep_status`` and ``lab.api.presets`` behind ``muonlab status`` / ``muonlab presets``."""

from __future__ import annotations

import time
import tomllib
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path


from . import perf_env, provenance, refine
from problems.backend import BackendError, get_backend
from .config import SweepConfig, load_config, parse_config
from .errors import ConfigError
from .executors import get as get_executor
from .plan import check_instances, plan
from .store import Store
from .sweep import expand_runs

REPO = Path(__file__).resolve().parents[1]


def _resolve(config, backend, dtype) -> SweepConfig:
    cfg = config if isinstance(config, SweepConfig) else load_config(config)
    over = {k: v for k, v in (("backend", backend), ("dtype", dtype)) if v is not None}
    if over:
        cfg = parse_config({**cfg.model_dump(mode="json", exclude_none=True), **over})
    return cfg


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_sweep(
    config,
    out_dir="results/sweep",
    backend: str | None = None,
    dtype: str | None = None,
    executor: str = "local",
    force: bool = False,
    progress: bool = True,
    **executor_options,
) -> dict:
    """Run the sweep described by ``config`` (a TOML path or a SweepConfig) into ``out_dir``.

    Finished jobs found in ``out_dir`` are skipped (resume); jobs that failed before are retried.
    ``executor_options`` go to the executor (dask: ``scheduler``, ``workers``, ``client``); None
    values are dropped. Everything is validated before anything is written. A job that raises is
    recorded as failed and the others go on; the grids are assembled only when every job has
    finished (``complete`` in the result says whether they were). Returns paths and counts.
    """
    t0 = time.perf_counter()
    cfg = _resolve(config, backend, dtype)
    options = {k: v for k, v in executor_options.items() if v is not None}
    ex = get_executor(executor)
    ex.check(options)
    try:
        bk = get_backend(cfg.backend, cfg.dtype)
    except BackendError as e:
        raise ConfigError(str(e)) from None
    runs = expand_runs(cfg)
    jobs = plan(cfg, runs)
    check_instances(cfg, runs, jobs)
    store = Store(out_dir)
    store.check(cfg.digest(), force)
    old = store.read_manifest()
    done = store.done() if old is not None and old.get("config_hash") == cfg.digest() else set()
    pending = [j for j in jobs if j.key not in done]
    # nothing above writes; the session (a cluster connection) is opened before anything is written
    with ex.open(options) if pending else nullcontext(options) as run_options:
        store.begin(cfg.digest(), force)
        manifest = {
            "config": cfg.model_dump(mode="json"),
            "config_hash": cfg.digest(),
            "started": _now(),
            "status": "running",
            "n_runs": len(runs),
            "n_jobs": len(jobs),
            "jobs": {j.key: j.runs for j in jobs},
            "versions": provenance.versions(),
            "blas": provenance.blas(),
            "git_revision": provenance.git_revision(),
            "host": provenance.host(),
            "perf_env": perf_env.settings(),
            **bk.info,
            "executor": executor,
            "executor_options": {k: v for k, v in options.items() if isinstance(v, (str, int, float))},
        }
        store.write_manifest(manifest)
        done = store.done()
        pending = [j for j in jobs if j.key not in done]
        t_exec = time.perf_counter()
        ex(pending, store, progress=progress, **run_options)
        t_exec = time.perf_counter() - t_exec

    keys = [j.key for j in jobs]
    missing = set(keys) - store.done()
    n_now = len(pending)
    if cfg.refine is not None and not missing:

        def execute(round_jobs, k):
            nonlocal t_exec, n_now
            todo = [j for j in round_jobs if j.key not in store.done()]
            manifest["jobs"].update({j.key: j.runs for j in round_jobs})
            manifest.update(refine_rounds=k, n_jobs=len(manifest["jobs"]), n_runs=sum(manifest["jobs"].values()))
            store.write_manifest(manifest)
            t = time.perf_counter()
            if todo:
                with ex.open(options) as round_options:
                    ex(todo, store, progress=progress, **round_options)
            t_exec += time.perf_counter() - t
            n_now += len(todo)

        refined = refine.run_rounds(cfg, runs, keys, store, execute)
        runs, keys = refined["runs"], refined["keys"]
        manifest.update(refine_rounds=refined["rounds"], refine_converged=refined["converged"])
        missing = set(keys) - store.done()
    failed = {k: v for k, v in store.failed().items() if k in set(keys)}
    result = {
        "n_runs": len(runs),
        "n_jobs": len(keys),
        "jobs_run_now": n_now,
        "steps": cfg.steps,
        "execute_wall_s": t_exec,
        "failed_jobs": len(failed),
        "complete": not missing,
    }
    if missing:
        manifest.update(
            status="incomplete",
            failed_jobs=len(failed),
            jobs_run_now=n_now,
            execute_wall_s=round(t_exec, 3),
            wall_s=round(time.perf_counter() - t0, 3),
        )
        store.write_manifest(manifest)
        return {
            **result,
            "paths": {"manifest": store.manifest_path},
            "wall_s": manifest["wall_s"],
            "failed": {k: v["error"] for k, v in failed.items()},
            "diverged": None,
        }

    import analysis  # noqa: PLC0415  (heavy: seaborn, scipy.stats; only once the jobs are done)

    results = store.read_parts("runs", keys)
    runs = runs if "refine_round" in runs else runs.assign(refine_round=0)  # every run is of the base grid
    table = runs.merge(results, on="run_id", how="left", validate="one_to_one").sort_values("run_id")
    curves = store.read_parts("curves", keys).sort_values(["run_id", "step"], kind="stable")
    paths = {"runs": store.write_table("runs", table), "curves": store.write_table("curves", curves)}
    spectra = store.read_parts("spectra", keys, optional=True)
    if not spectra.empty:  # one row per (cell, seed, name, index): the instance's spectrum (docs/results.md)
        spectra = (
            runs[["run_id", "cell_id", "seed"]]
            .merge(spectra, on="run_id")
            .drop(columns="run_id")
            .drop_duplicates(["cell_id", "seed", "name", "index"])
            .sort_values(["cell_id", "seed", "name", "index"], kind="stable")
        )
        paths["spectra"] = store.write_table("spectra", spectra[["cell_id", "seed", "name", "index", "value"]])
    manifest.update(
        status="complete", finished=_now(), failed_jobs=0, jobs_run_now=n_now, execute_wall_s=round(t_exec, 3)
    )
    store.write_manifest(manifest)
    paths.update(analysis.analyze(store.dir))
    manifest["wall_s"] = round(time.perf_counter() - t0, 3)
    store.write_manifest(manifest)
    paths["manifest"] = store.manifest_path
    return {
        **result,
        "paths": paths,
        "wall_s": manifest["wall_s"],
        "failed": {},
        "diverged": int((table["status"] != "ok").sum()),
    }


def sweep_status(out_dir) -> dict:
    """Jobs and runs done / pending / failed in a (possibly partial) sweep directory."""
    store = Store(out_dir)
    if not store.dir.is_dir():
        raise ConfigError(f"dir: {out_dir} is not a directory")
    manifest = store.read_manifest()
    if manifest is None:
        raise ConfigError(f"dir: {out_dir} holds no manifest.json; it is not a sweep directory")
    jobs = manifest.get("jobs")
    if not isinstance(jobs, dict):
        raise ConfigError(f"dir: {out_dir}/manifest.json lists no jobs (written by an older muonlab); re-run the sweep")
    done = store.done() & set(jobs)
    failed = {k: v for k, v in store.failed().items() if k in jobs}
    pending = set(jobs) - done - set(failed)

    def runs(keys):
        return sum(int(jobs[k]) for k in keys)

    return {
        "dir": str(out_dir),
        "name": manifest.get("config", {}).get("name"),
        "config_hash": manifest.get("config_hash"),
        "status": manifest.get("status"),
        "executor": manifest.get("executor"),
        "jobs": {"done": len(done), "pending": len(pending), "failed": len(failed), "total": len(jobs)},
        "runs": {"done": runs(done), "pending": runs(pending), "failed": runs(failed), "total": runs(jobs)},
        "failed": {k: v.get("error", "") for k, v in failed.items()},
    }


def preset_dirs() -> list[Path]:
    """Where presets live: the checkout's configs/ and configs/claims/ (else ./configs)."""
    base = REPO / "configs" if (REPO / "configs").is_dir() else Path("configs")
    return [base, base / "claims"]


def presets(dirs=None) -> list[tuple[Path, str]]:
    """(path, one-line description) of every ``*.toml`` in ``dirs`` (default :func:`preset_dirs`)."""
    out = []
    for d in map(Path, dirs or preset_dirs()):
        for path in sorted(d.glob("*.toml")):
            try:
                data = tomllib.loads(path.read_text())
                sweep = data.get("sweep") if isinstance(data.get("sweep"), dict) else {}
                # a sweep preset has a description; a claim preset a title (and its sweep a description)
                desc = str(data.get("description") or data.get("title") or sweep.get("description") or "").strip()
                desc = desc or "(no description)"
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
                desc = f"(unreadable: {type(e).__name__})"
            out.append((path, " ".join(desc.split())))
    return out
