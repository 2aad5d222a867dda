"""Executors run pending jobs and hand each finished job's tables to the store. Registered by
name in ``EXECUTORS``; the in-process one is the default."""
from __future__ import annotations

from typing import Callable

from tqdm.auto import tqdm

from .jobs import execute
from .plan import JobSpec
from .store import Store

EXECUTORS: dict[str, Callable] = {}


def register(name: str):
    def deco(fn):
        EXECUTORS[name] = fn
        return fn

    return deco


@register("local")
def run_local(jobs: list[JobSpec], store: Store, progress: bool = True, **_) -> None:
    """Run jobs one after another in this process (each job is already vectorized)."""
    runs_total = sum(j.runs for j in jobs)
    with tqdm(total=runs_total, unit="run", disable=not progress, desc="runs", dynamic_ncols=True) as bar:
        for spec in jobs:
            store.write_part(spec.key, execute(spec))
            bar.update(spec.runs)
