"""Analysis of a finished sweep: fair tuning, phase tables and figures, rate fits, theory
overlays, claim rules and the report. Reads the result directory (CSV + manifest.json) through
:class:`analysis.results.Results`; never imports ``lab``, ``problems`` or ``runners``.

The heavy names (pipeline, figures) load on first use, so that ``lab.config`` can import
``analysis.options`` without pulling in matplotlib (docs/design.md, "analysis/")."""

from __future__ import annotations

import importlib

_LAZY = {
    "analyze": ("pipeline", "analyze"),
    "report": ("page", "report"),
    "Results": ("results", "Results"),
    "CRITERIA": ("options", "CRITERIA"),
    "AnalysisOptions": ("options", "AnalysisOptions"),
    "criterion": ("tune", "criterion"),
    "refine_edges": ("tune", "refine_edges"),
    "select": ("tune", "select"),
    "sensitivity": ("tune", "sensitivity"),
    "steps_to_target": ("tune", "steps_to_target"),
    "tune": ("tune", "tune"),
    "performance_profile": ("phase", "performance_profile"),
    "phase_table": ("phase", "phase_table"),
    "evaluate": ("rules", "evaluate"),
    "overall": ("rules", "overall"),
}
_MODULES = (
    "figures",
    "heatmaps",
    "lines",
    "options",
    "phase",
    "pipeline",
    "rates",
    "results",
    "rules",
    "stats",
    "theory",
)

__all__ = sorted([*_LAZY, *_MODULES])


def __getattr__(name: str):
    if name in _LAZY:
        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{mod}", __name__), attr)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    globals()[name] = value
    return value
