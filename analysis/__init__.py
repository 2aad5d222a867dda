"""Analysis of a finished sweep: fair tuning, phase tables and figures.
Reads the result grids; never imports ``lab``."""
from .phase import phase_table
from .report import analyze, report
from .tune import criterion, sensitivity, tune

__all__ = ["analyze", "criterion", "phase_table", "report", "sensitivity", "tune"]
