"""The lab: configs, sweeps, planning, executors, the result store and the CLI.

Nothing below ``lab`` imports it (the array layer is ``problems.backend``). Attributes still load
lazily for one reason: ``muonlab`` (``lab.cli``) must set the BLAS environment
(``lab.perf_env``) before NumPy is first imported, and importing the package runs this file first.
"""

from __future__ import annotations

import importlib

__all__ = ["run_sweep", "load_config", "ConfigError"]

_LAZY = {
    "run_sweep": ("lab.api", "run_sweep"),
    "load_config": ("lab.config", "load_config"),
    "ConfigError": ("lab.errors", "ConfigError"),
}


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'lab' has no attribute {name!r}")
