"""The lab: configs, sweeps, planning, executors, the result store and the CLI.

Attributes load lazily so that ``import lab.backend`` (used by ``problems`` and ``runners``)
does not import the orchestration layer, pandas or matplotlib.
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
