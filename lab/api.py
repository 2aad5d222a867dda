"""``lab.run_sweep``: config -> sweep -> plan -> executor -> store -> analysis (docs/design.md);
``lab.api.sweep_status`` and ``lab.api.presets`` behind ``muonlab status`` / ``muonlab presets``."""

from __future__ import annotations

import logging
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
from .preflight import calibrate, preflight, size
from .store import Store
from .sweep import expand_runs

REPO = Path(__file__).resolve().parents[1]
stage = logging.getLogger("lab.stage")  # one line per stage (the CLI prints them on stderr)


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
    report: bool = False,
    **executor_options,
) -> dict:
    """Run the sweep described by ``config`` (a TOML path or a SweepConfig) into ``out_dir``.

    Finished jobs found in ``out_dir`` are skipped (resume); jobs that failed before are retried.
    ``executor_options`` go to the executor (dask: ``scheduler``, ``workers``, ``client``); None
    values are dropped. Everything is validated before anything is written. A job that raises is
    recorded as failed and the others go on; the grids are assembled only when every job has
    finished (``complete`` in the result says whether they were). ``report``: also render
    report.md / report.html (:func:`analysis.report`). Returns paths and counts.
    """
    t0 = time.perf_counter()
    cfg, ex, options, bk, runs, jobs, est = _prepare(config, backend, dtype, executor, executor_options)
    stage.info(_plan_line(est))
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
    steps_now = sum(j.runs * j.steps for j in pending)
    if cfg.refine is not None and not missing:

        def execute(round_jobs, k):
            nonlocal t_exec, n_now, steps_now
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
            steps_now += sum(j.runs * j.steps for j in todo)

        refined = refine.run_rounds(cfg, runs, keys, store, execute)
        runs, keys = refined["runs"], refined["keys"]
        manifest.update(refine_rounds=refined["rounds"], refine_converged=refined["converged"])
        missing = set(keys) - store.done()
    failed = {k: v for k, v in store.failed().items() if k in set(keys)}
    result = {
        "n_runs": len(runs),
        "n_jobs": len(keys),
        "jobs_run_now": n_now,
        "run_steps_now": steps_now,
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

    stage.info(f"assembling runs.csv, curves.csv from {len(keys)} jobs")
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
    paths.update((analysis.report if report else analysis.analyze)(store.dir))
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


def _prepare(config, backend, dtype, executor, executor_options):
    """Everything checked before anything is written: the config, the executor's options, the
    backend, the plan, the preflight (memory, budget) and every problem cell and optimizer built
    once (lab.plan.check_instances)."""
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
    est = preflight(cfg, jobs)  # before check_instances, which allocates the problems
    check_instances(cfg, runs, jobs)
    return cfg, ex, options, bk, runs, jobs, est


def _plan_line(est) -> str:
    avail = f" of {size(est.available_bytes)} available" if est.available_bytes is not None else ""
    return (
        f"plan: {est.jobs} jobs, {est.runs:,} runs x {est.steps:,} steps = {est.run_steps:,} run-steps; "
        f"peak memory ~{size(est.peak_bytes)}{avail}"
    )


def dry_run(config, out_dir="results/sweep", backend=None, dtype=None, executor="local", **executor_options):
    """What ``run_sweep`` would do, as lines to print: the plan (jobs per optimizer, runs, steps,
    run-steps), the estimate (peak memory, time from a short calibration on this machine), what
    ``out_dir`` holds and the files the sweep would write. Validates as ``run_sweep`` does; writes nothing."""
    cfg, ex, options, bk, runs, jobs, est = _prepare(config, backend, dtype, executor, executor_options)
    est = calibrate(est, jobs)
    store = Store(out_dir)
    store.check(cfg.digest(), force=True)
    old = store.read_manifest()
    done = store.done() & {j.key for j in jobs} if old is not None and old.get("config_hash") == cfg.digest() else set()
    todo = [j for j in jobs if j.key not in done]
    lines = [f"sweep {cfg.name!r} (config {cfg.digest()}), backend {cfg.backend} {cfg.dtype}, executor {executor}"]
    lines.append(_plan_line(est))
    for o in cfg.optimizers:
        mine = [j for j in jobs if j.meta.get("label") == o.key]
        rate = est.rates.get(o.key)
        lines.append(
            f"  {o.key}: {len(mine)} job(s), {sum(j.runs for j in mine):,} runs"
            + (f", ~{rate:,.0f} run-steps/s measured on a small batch" if rate else ", not timed (slowest rate used)")
        )
    lines.append(
        f"memory: largest job ~{size(est.job_bytes)} ({est.worst.runs if est.worst else 0} runs, one run "
        f"~{size(est.run_bytes)}; memory_budget_mb = {cfg.memory_budget_mb:g}), assembling the grids "
        f"~{size(est.grid_bytes)}"
    )
    if est.seconds is not None:
        share = sum(j.runs * j.steps for j in todo) / max(est.run_steps, 1)
        lines.append(
            f"time: ~{est.seconds * share:,.0f} s for the jobs (rates measured here on small batches: errs long), "
            "then the analysis"
        )
    if done:
        lines.append(f"resume: {len(done)} of {len(jobs)} jobs already done in {out_dir}; {len(todo)} to run")
    elif old is not None:
        lines.append(f"out: {out_dir} holds a different config's sweep; the run needs --force (it would discard it)")
    lines.append(
        f"would write into {out_dir}/: parts/ (one set per job), manifest.json, runs.csv, curves.csv, spectra.csv, "
        "summary.csv, sensitivity.csv, phase.csv, profile.csv, analysis.json, rates.csv (when rates are fitted), "
        "figures (*.png); report.md and report.html with --report"
    )
    lines.append("dry run: nothing was written")
    return lines


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
