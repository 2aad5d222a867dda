"""One job run beside the caller in a forked process (:func:`start`): figures.draw_standard draws
its biggest figure there while it draws the others, a second core's worth of drawing (the fork
copies the imported matplotlib, so the child starts in milliseconds, not the second that a fresh
interpreter takes). Where there is no fork or a single core, where other Python threads are alive
(a fork copies only the calling thread, and a lock another thread holds would stay held in the
child), or :data:`ENABLED` is off (tests that capture figures in this process), the job runs here,
when waited for."""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable

ENABLED = True


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def start(job: Callable[[], object]) -> Callable[[], object]:
    """Start ``job`` (no arguments; its result and any exception must pickle) beside the caller;
    returns ``wait()``, which returns the job's result or raises its exception."""
    if not (ENABLED and hasattr(os, "fork") and cores() >= 2 and threading.active_count() == 1):
        return job
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send the outcome, leave without the parent's exit handlers
        os.close(r)
        code = 1
        try:
            try:
                out, code = ("ok", job()), 0
            except BaseException as e:  # noqa: BLE001  (sent to the parent, which raises it)
                out = ("error", e)
            try:
                data = pickle.dumps(out)
            except Exception as e:  # noqa: BLE001
                data = pickle.dumps(("error", RuntimeError(f"figure process: {out[1]!r} ({e})")))
            with os.fdopen(w, "wb") as f:
                f.write(data)
        finally:
            os._exit(code)
    os.close(w)

    def wait():
        with os.fdopen(r, "rb") as f:
            data = f.read()
        _, status = os.waitpid(pid, 0)
        if not data:
            raise RuntimeError(f"figure process ended without a result (wait status {status})")
        kind, value = pickle.loads(data)
        if kind == "error":
            raise value
        return value

    return wait
