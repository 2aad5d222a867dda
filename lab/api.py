"""``lab.run_sweep``: config -> sweep -> plan -> executor -> store -> analysis (docs/design.md);
``lab.api.sweep_status`` and ``lab.api.presets`` behind ``muonlab status`` / ``muonlab presets``."""

from __future__ import annotations

import logging
import os
import time
import tomllib
from contextlib import nullcontext
from pathlib import Path


from . import perf_env, provenance, refine
from problems.backend import BackendError, get_backend
from .config import SweepConfig, load_config, parse_config
from .errors import ConfigError
from .executors import get as get_executor
from .plan import check_instances, plan
from .preflight import calibrate, preflight, size
from .store import Store, utc_now
from .sweep import expand_runs

REPO = Path(__file__).resolve().parents[1]
stage = logging.getLogger("lab.stage")  # one line per stage (the CLI prints them on stderr)


def _resolve(config, backend, dtype) -> SweepConfig:
    cfg = config if isinstance(config, SweepConfig) else load_config(config)
    over = {k: v for k, v in (("backend", backend), ("dtype", dtype)) if v is not None}
    if over:
        cfg = parse_config({**cfg.model_dump(mode="json", exclude_none=True), **over})
    return cfg


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
    store = Store(out_dir)
    store.check(cfg.digest(), force)
    old = store.read_manifest()
    old = old if old is not None and old.get("config_hash") == cfg.digest() else None
    done = store.done() if old is not None else set()
    pending = [j for j in jobs if j.key not in done]
    # nothing above writes; the session (a cluster connection) is opened before anything is written
    with ex.open(options) if pending else nullcontext(options) as run_options:
        store.begin(cfg.digest(), force)
        stage.info(_plan_line(est))  # after --out is known to be usable: a refused one is the only line
        manifest = _open_manifest(old, cfg, runs, jobs, bk.info, executor, options)
        session = manifest["sessions"][-1]
        store.session = len(manifest["sessions"]) - 1
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
        _close_session(manifest, session, "incomplete", n_now, t_exec, t0, failed_jobs=len(failed))
        store.write_manifest(manifest)
        return {
            **result,
            "paths": {"manifest": store.manifest_path},
            "wall_s": session["wall_s"],
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
    else:
        (store.dir / "spectra.csv").unlink(missing_ok=True)  # a stale one of an earlier assembly
    manifest.update(status="complete", failed_jobs=0, files=store.grids, job_sessions=store.job_sessions(keys))
    store.write_manifest(manifest)
    paths.update((analysis.report if report else analysis.analyze)(store.dir))
    _close_session(manifest, session, "complete", n_now, t_exec, t0)
    record_outputs(manifest, paths.values())
    store.write_manifest(manifest)
    paths["manifest"] = store.manifest_path
    return {
        **result,
        "paths": paths,
        "wall_s": session["wall_s"],
        "failed": {},
        "diverged": int((table["status"] != "ok").sum()),
    }


def _provenance() -> dict:
    """Where this process runs: git revision, host, CPU, the BLAS settings, package versions."""
    return {
        "git_revision": provenance.git_revision(),
        "host": provenance.host(),
        "cpu": perf_env.cpu()["model"] or None,
        "perf_env": perf_env.settings(),
        "versions": provenance.versions(),
    }


def _open_manifest(old: dict | None, cfg, runs, jobs, backend_info: dict, executor: str, options: dict) -> dict:
    """The manifest of this session: a new one (with this process's provenance as the sweep's
    record), or ``old`` (same config) with its record kept; a session entry is appended to
    ``sessions`` either way (docs/results.md, manifest.json)."""
    session = {
        "started": utc_now(),
        "finished": None,
        "status": "running",
        "jobs_run": 0,
        "wall_s": None,
        "execute_wall_s": None,
        "executor": executor,
        **(prov := _provenance()),
    }
    if old is None or not isinstance(old.get("sessions"), list):  # new, or written before sessions and
        # part indexes existed (every job is computed again, so this session's record is the sweep's)
        manifest = {
            "config": cfg.model_dump(mode="json"),
            "config_hash": cfg.digest(),
            "started": session["started"],
            **prov,
            "blas": provenance.blas(),
            **backend_info,
            "executor": executor,
            "executor_options": {k: v for k, v in options.items() if isinstance(v, (str, int, float))},
            "sessions": [],
        }
    else:
        manifest = dict(old)
    manifest.update(status="running", n_runs=len(runs), n_jobs=len(jobs), jobs={j.key: j.runs for j in jobs})
    manifest["sessions"].append(session)
    return manifest


def _close_session(manifest: dict, session: dict, status: str, n_now: int, t_exec: float, t0: float, **extra) -> None:
    """End this session's entry; a session that ran jobs adds its times to the sweep's (a no-op
    resume leaves the record of the sessions that computed the jobs untouched)."""
    wall = round(time.perf_counter() - t0, 3)
    session.update(
        finished=utc_now(),
        status=status,
        jobs_run=n_now,
        wall_s=wall,
        execute_wall_s=round(t_exec, 3) if n_now else 0.0,
    )
    manifest.update(status=status, jobs_run_now=n_now, **extra)
    if n_now:
        computed = [s for s in manifest["sessions"] if s.get("jobs_run") and s.get("wall_s") is not None]
        manifest["wall_s"] = round(sum(s["wall_s"] for s in computed), 3)
        manifest["execute_wall_s"] = round(sum(s["execute_wall_s"] for s in computed), 3)
        if status == "complete":
            manifest["finished"] = session["finished"]
    elif status == "complete" and "finished" not in manifest:
        manifest["finished"] = session["finished"]


def record_outputs(manifest: dict, paths) -> None:
    """Add the files the lab wrote into the sweep directory to the manifest's ``outputs`` (the
    list --force may discard)."""
    names = {Path(p).name for p in paths if Path(p).name != "manifest.json"}
    old = manifest.get("outputs")
    manifest["outputs"] = sorted(names | {n for n in (old if isinstance(old, list) else []) if isinstance(n, str)})


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
    store = Store(out_dir, field="dir")
    if not store.dir.is_dir():
        raise ConfigError(f"dir: {out_dir} is not a directory")
    manifest = store.read_manifest()
    if manifest is None:
        raise ConfigError(f"dir: {out_dir} holds no manifest.json; it is not a sweep directory")
    if store.parts.exists() and not store.parts.is_dir():
        raise ConfigError(f"dir: {store.parts} is a file, not the directory of the sweep's part files")
    jobs = manifest.get("jobs")
    if isinstance(jobs, dict) and not all(isinstance(v, int) and not isinstance(v, bool) for v in jobs.values()):
        raise ConfigError(f"dir: {store.manifest_path}: jobs: not a map of job key -> number of runs; re-run the sweep")
    if not isinstance(jobs, dict):
        raise ConfigError(f"dir: {out_dir}/manifest.json lists no jobs (written by an older muonlab); re-run the sweep")
    damaged = {k: v for k, v in store.damaged().items() if k in jobs}
    done = store.done() & set(jobs)
    failed = {k: v for k, v in store.failed().items() if k in jobs and k not in damaged}
    pending = set(jobs) - done - set(failed) - set(damaged)

    def runs(keys):
        return sum(int(jobs[k]) for k in keys)

    return {
        "dir": str(out_dir),
        "name": (manifest.get("config") or {}).get("name"),
        "config_hash": manifest.get("config_hash"),
        "status": manifest.get("status"),
        "executor": manifest.get("executor"),
        "jobs": {
            "done": len(done),
            "pending": len(pending),
            "failed": len(failed),
            "damaged": len(damaged),
            "total": len(jobs),
        },
        "runs": {
            "done": runs(done),
            "pending": runs(pending),
            "failed": runs(failed),
            "damaged": runs(damaged),
            "total": runs(jobs),
        },
        "failed": {k: v.get("error", "") for k, v in failed.items()},
        "damaged": damaged,
        "damaged_grids": store.damaged_grids(manifest) if manifest.get("status") == "complete" else {},
        "sessions": len(manifest.get("sessions") or []),
    }


def report(out_dir, criterion: str | None = None, focus: str | None = None, refine_edges: bool = False) -> dict:
    """``analysis.report`` on a sweep directory, refusing damaged grids (the analysis checks each
    grid against the manifest's integrity record as it reads it) and adding the files written to
    the manifest's ``outputs``. Every error is one line naming the file."""
    d = Path(out_dir)
    if not d.exists():
        raise ConfigError(f"dir: {d}: no such directory")
    if not d.is_dir():
        raise ConfigError(f"dir: {d} is a file, not a sweep directory")
    if not (d / "runs.csv").exists():
        raise ConfigError(f"dir: {d} holds no runs.csv; run a sweep into it first")
    store = Store(d, field="dir")
    manifest = store.read_manifest()
    if not os.access(d, os.W_OK | os.X_OK):
        raise ConfigError(f"dir: {d} is not writable (the report is written into it)")
    from analysis.results import REBUILD  # noqa: PLC0415

    if bad := store.damaged_grids(manifest or {}):  # every grid, also one this analysis skips
        name, why = next(iter(bad.items()))
        raise ConfigError(f"{d / name}: damaged: {why}; {REBUILD}")
    import analysis  # noqa: PLC0415

    try:
        analysis.Results(d).check_files()  # before the analysis says anything
    except ValueError as e:
        raise ConfigError(str(e)) from None

    try:
        paths = analysis.report(d, criterion=criterion, focus=focus, refine_edges=refine_edges)
    except ValueError as e:  # analysis.results.ResultsError and option errors: one line naming the file or field
        raise ConfigError(str(e).splitlines()[0]) from None
    except OSError as e:
        raise ConfigError(f"dir: cannot write into {d} ({e.strerror or type(e).__name__}: {e.filename})") from None
    if manifest is not None:
        record_outputs(manifest, paths.values())
        store.write_manifest(manifest)
    return paths


PRESETS = Path(__file__).resolve().parent / "presets"  # the presets as installed (package data)


def preset_dirs() -> list[Path]:
    """Where the presets live: the installed package's ``lab/presets`` (the checkout's configs/
    shipped as package data, pyproject.toml), else the checkout's ``configs`` (a source tree or
    an editable install); each with its ``claims`` subdirectory. Independent of the cwd."""
    base = PRESETS if PRESETS.is_dir() else REPO / "configs"
    return [base, base / "claims"]


def _describe(path: Path) -> tuple[str, str | None]:
    """(one-line description, claim name or None) of a preset file."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        return f"(unreadable: {type(e).__name__})", None
    sweep = data.get("sweep") if isinstance(data.get("sweep"), dict) else {}
    # a sweep preset has a description; a claim preset a title (and its sweep a description)
    desc = str(data.get("description") or data.get("title") or sweep.get("description") or "").strip()
    claim = data.get("name") if "rules" in data and sweep and isinstance(data.get("name"), str) else None
    return " ".join((desc or "(no description)").split()), claim


def presets(dirs=None) -> list[tuple[Path, str]]:
    """(path, one-line description) of every ``*.toml`` in ``dirs`` (default :func:`preset_dirs`)."""
    return [(p, desc) for p, desc, _ in preset_entries(dirs)]


def preset_entries(dirs=None) -> list[tuple[Path, str, str | None]]:
    """(path, description, claim name or None) of every ``*.toml`` in ``dirs``: a claim preset
    is run by ``muonlab reproduce NAME``, any other by ``muonlab run PATH``."""
    out = []
    for d in map(Path, dirs or preset_dirs()):
        if d.is_file():
            raise ConfigError(f"dir: {d} is a file, not a directory of presets")
        for path in sorted(d.glob("*.toml")):
            out.append((path, *_describe(path)))
    return out
