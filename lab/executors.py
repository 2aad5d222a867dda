"""Executors run pending jobs and hand each finished job's outcome to the store. Registered by
name in ``EXECUTORS`` (a :class:`problems.registry.Registry`); the in-process one is the default.

An executor is ``fn(jobs, store, progress, **options)``: it runs every job of ``jobs`` (each a
pure :class:`lab.plan.JobSpec`) through :func:`lab.jobs.run_job`, wherever it likes, and passes
each :class:`lab.jobs.JobOutcome` to :func:`finish` in the calling process, which writes it through
the store and advances the progress bar. Options an executor accepts are declared when it is
registered, with an optional ``preflight(**options)`` that rejects bad options (or a missing
optional dependency) and an optional ``session(**options)`` context manager that acquires what
the executor needs (a cluster connection) and yields the options to run with; both run before
anything is written, so an unreachable scheduler leaves the output directory untouched.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable

from tqdm.auto import tqdm

from problems.registry import Registry

from .errors import ConfigError
from .jobs import JobOutcome, run_job
from .plan import JobSpec
from .store import Store


@dataclass(frozen=True)
class Executor:
    name: str
    fn: Callable
    options: tuple[str, ...] = ()
    preflight: Callable | None = None
    session: Callable | None = None
    doc: str = ""

    def check(self, options: dict) -> None:
        """Reject options this executor does not take, then run its preflight (writes nothing)."""
        for k in options:
            if k not in self.options:
                allowed = ", ".join(self.options) or "none"
                raise ConfigError(f"{k}: not an option of executor {self.name!r}; its options: {allowed}")
        if self.preflight is not None:
            self.preflight(**options)

    def open(self, options: dict):
        """Context manager yielding the options to run with (e.g. a connected client)."""
        return self.session(**options) if self.session is not None else nullcontext(options)

    def __call__(self, jobs: list[JobSpec], store: Store, progress: bool = True, **options) -> None:
        return self.fn(jobs, store, progress=progress, **options)


EXECUTORS = Registry("executor", "executor")  # name -> Executor


def register(
    name: str, options: tuple[str, ...] = (), preflight: Callable | None = None, session: Callable | None = None
):
    def deco(fn):
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        EXECUTORS.add(name, Executor(name, fn, tuple(options), preflight, session, doc))
        return fn

    return deco


def get(name: str) -> Executor:
    return EXECUTORS.get(name)


# --- the shared path of a finished job --------------------------------------------------------
def progress_bar(jobs: list[JobSpec], progress: bool, desc: str):
    """A bar over run-steps (runs x steps: jobs differ in size), with rate and ETA. No tqdm
    monitor thread: the run loop feeds the bar every 0.5 s, and a thread left alive after the run
    would keep analysis.forked from drawing a figure beside the others."""
    tqdm.monitor_interval = 0
    return tqdm(
        total=sum(j.runs * j.steps for j in jobs),
        unit="run-step",
        unit_scale=True,
        desc=desc,
        disable=not progress,
        dynamic_ncols=True,
        file=sys.stderr,
        smoothing=0.1,
    )


class StepCounter:
    """A job's feed into the bar: ``counter(n)`` (called by the run loop, from its lane threads)
    adds n run-steps; ``counted`` is how many were added."""

    def __init__(self, bar):
        self.bar, self.counted, self._lock = bar, 0, threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self.counted += n
            self.bar.update(n)


def finish(store: Store, bar, outcome: JobOutcome, counted: int = 0) -> None:
    """Store one job's outcome (parts, or a failure marker) and advance the bar to the job's end
    (``counted``: the run-steps the job already fed it)."""
    store.record(outcome)
    if not outcome.ok:
        tqdm.write(f"muonlab: job {outcome.key} failed: {outcome.error}", file=sys.stderr)
    bar.update(max(outcome.run_steps - counted, 0))


# --- in-process -------------------------------------------------------------------------------
@register("local")
def run_local(jobs: list[JobSpec], store: Store, progress: bool = True) -> None:
    """Run jobs one after another in this process (each job is already vectorized); the bar
    moves as the steps go (the run loop's progress feed)."""
    with progress_bar(jobs, progress, "local") as bar:
        for spec in jobs:
            counter = StepCounter(bar) if progress else None
            outcome = run_job(spec, progress=counter)
            finish(store, bar, outcome, counter.counted if counter is not None else 0)


# --- dask.distributed ---------------------------------------------------------------------------
DASK_MISSING = (
    "executor: 'dask' needs the optional dask extra (dask.distributed); "
    "install it with: pip install 'muonlab[dask]'  (in a checkout: pip install -e '.[dask]')"
)


def _dask_preflight(scheduler: str | None = None, workers: int | None = None, client=None) -> None:
    if importlib.util.find_spec("distributed") is None:
        raise ConfigError(DASK_MISSING)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers: got {workers!r}; allowed: an integer >= 1")
    if workers is not None and (scheduler is not None or client is not None):
        raise ConfigError(
            "workers: only for a local cluster; a running scheduler has the workers started on its machines"
        )
    if scheduler is not None and client is not None:
        raise ConfigError("scheduler: give a scheduler address or a client, not both")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ConfigError(f"scheduler: got {scheduler!r}; allowed: an address such as tcp://host:8786")


# dask's nannies set MALLOC_TRIM_THRESHOLD_ in the workers they spawn, which turns off glibc's
# adaptive mmap threshold: every (B, m, n) temporary of a job is then mmap'ed and page-faulted
# afresh, about 2.5x slower on the jobs here. The workers we start go without it
# (docs/distributed.md says how to do the same for workers started by hand).
WORKER_ENV = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def local_cluster(workers: int | None = None):
    """A LocalCluster of ``workers`` single-threaded worker processes (None: one per core)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set(WORKER_ENV):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)


@contextmanager
def _dask_session(scheduler: str | None = None, workers: int | None = None, client=None):
    """Yield ``{"client": ...}``: the given client, one connected to ``scheduler``, or one of a
    LocalCluster of ``workers`` single-threaded processes (closed on exit)."""
    if client is not None:
        yield {"client": client}
        return
    from distributed import Client

    with ExitStack() as stack:
        if scheduler is not None:
            try:
                client = stack.enter_context(Client(scheduler, timeout="20s"))
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(
                    f"scheduler: cannot connect to {scheduler!r} ({type(exc).__name__}: {exc}); "
                    "is `dask scheduler` running there? (docs/distributed.md)"
                ) from None
        else:
            client = stack.enter_context(Client(stack.enter_context(local_cluster(workers))))
        yield {"client": client}


@register("dask", options=("scheduler", "workers", "client"), preflight=_dask_preflight, session=_dask_session)
def run_dask(
    jobs: list[JobSpec],
    store: Store,
    progress: bool = True,
    scheduler: str | None = None,
    workers: int | None = None,
    client=None,
) -> None:
    """Run jobs on a dask.distributed cluster: a running scheduler (``scheduler`` address, or a
    ``client`` already connected), else a LocalCluster of ``workers`` single-threaded processes.
    Workers return outcomes; this process writes them. A worker that dies mid-job has its job
    rescheduled by the scheduler; a job that keeps killing workers is recorded as failed."""
    if not jobs:
        return
    from distributed import as_completed

    with _dask_session(scheduler, workers, client) as opened:
        client = opened["client"]
        specs = {f"muonlab-{spec.key}": spec for spec in jobs}
        pending = as_completed(client.submit(run_job, spec, key=key) for key, spec in specs.items())
        with progress_bar(jobs, progress, "dask") as bar:
            for fut in pending:
                spec = specs[fut.key]
                try:
                    outcome = fut.result()
                except Exception as exc:  # noqa: BLE001  (e.g. KilledWorker: the job took workers down)
                    outcome = JobOutcome.failure(
                        spec, exc, detail=f"{type(exc).__name__} from the dask scheduler: {exc}"
                    )
                finish(store, bar, outcome)
                fut.release()
