"""The analysis options and their defaults, in one place: the ``[analysis]`` section of a sweep
config (``lab.config`` takes :class:`AnalysisOptions` and :data:`CRITERIA` from here) and what
:class:`analysis.results.Results` reads back from a result directory's manifest."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer

CRITERIA = {
    "final_gap": "loss gap f - f* after the last step",
    "min_grad_nuc": "smallest exact nuclear gradient norm ||grad f(X_t)||_* over every step t < T (the every-step "
    "accumulator; needs accumulate = ['grad_nuc'])",
    "best_gap": "smallest loss gap over the logged steps",
    "auc_log_gap": "area under the log10-gap curve over [0, T] (trapezoid on the logged steps) divided by T, "
    "reported as 10^(that): the time-averaged geometric-mean gap",
    "steps_to_target": "first logged step with gap <= target x initial gap; a miss or a divergence counts as +inf "
    "(as in AlgoPerf's time-to-target)",
}
ACCUMULATED = {"min_grad_nuc": "grad_nuc"}  # criteria read from an every-step accumulator -> the one they need
NEEDS_CURVES = frozenset({"auc_log_gap"})  # criteria computed from curves.csv
RATE_METRICS = ("gap", "grad_fro", "grad_nuc", "grad_op", "dist_fro")  # curves.csv metrics a rate is fitted on
LEVEL = 0.95  # bootstrap CI level


class AnalysisOptions(BaseModel):
    """How ``analysis`` reads the sweep (docs/protocol.md)."""

    model_config = ConfigDict(extra="forbid", strict=True)  # as every lab config model

    focus: Optional[str] = None  # default: the first optimizer named muon, else the first one
    criterion: Literal[tuple(CRITERIA)] = "final_gap"  # type: ignore[valid-type]
    x: Optional[str] = None
    y: Optional[str] = None
    level: float = Field(LEVEL, gt=0, lt=1)  # bootstrap CI level
    cells: Optional[list[int]] = None  # cells for curves_selected.png / rates.png (default: corners + extremes)
    rate_metric: Literal[RATE_METRICS] = "gap"  # type: ignore[valid-type]
    rate_window: Optional[tuple[float, float]] = None  # steps [t0, t1] of the vs-step fit (default: last decade)
    rate_horizon: Optional[str] = None  # a p_/h_ parameter that is the horizon T: fit final metric vs T across runs

    @field_validator("rate_window", mode="before")
    @classmethod
    def _window_from_list(cls, v):
        # TOML and JSON have arrays, not tuples; the strict model takes a [t0, t1] array here
        return tuple(v) if isinstance(v, list) else v

    @model_serializer(mode="wrap")
    def _omit_unset_options(self, handler):
        """The options added after the first release appear in a dump only when they differ from
        their defaults, so that they leave the config hash of existing sweeps unchanged."""
        out = handler(self)
        for k in ("level", "cells", "rate_metric", "rate_window", "rate_horizon"):
            if k in out and getattr(self, k) == type(self).model_fields[k].default:
                del out[k]
        return out

    @classmethod
    def read(cls, section: "dict | None") -> "AnalysisOptions":
        """The options of a manifest's ``config.analysis`` section merged with the defaults (lax:
        a manifest is JSON, so numbers may come back as ints)."""
        return cls.model_validate(dict(section or {}), strict=False)
