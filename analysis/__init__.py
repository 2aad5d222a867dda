"""Analysis of a finished sweep: fair tuning, phase tables and figures, rate fits, theory
overlays and the report. Reads the result directory (CSV + manifest.json); never imports ``lab``."""
from . import rates, stats, theory
from .phase import performance_profile, phase_table
from .report import analyze, report
from .tune import CRITERIA, criterion, refine_edges, select, sensitivity, steps_to_target, tune

from . import rules_compare  # noqa: E402,F401  (registers the rules of analysis.compare)

__all__ = ["CRITERIA", "analyze", "criterion", "performance_profile", "phase_table", "rates", "refine_edges", "report",
           "select", "sensitivity", "stats", "steps_to_target", "theory", "tune"]
