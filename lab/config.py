"""The sweep config (TOML), validated with pydantic and against the problem and optimizer
registries. Every error becomes a :class:`lab.errors.ConfigError` whose one-line message names
the field and what is allowed."""
from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

import problems
import runners
from problems.params import ParamError

from .backend import BACKENDS, DTYPES
from .errors import ConfigError
from .grids import GridValue, expand

CRITERIA = ("final_gap", "best_gap", "auc_log_gap", "steps_to_target")  # analysis.tune.CRITERIA


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProblemConfig(_Strict):
    kind: str
    fixed: dict[str, GridValue] = Field(default_factory=dict)
    grid: dict[str, GridValue] = Field(default_factory=dict)


class OptimizerConfig(_Strict):
    name: str
    label: Optional[str] = None
    lr: GridValue
    hparams: dict[str, GridValue] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.label or self.name


class AnalysisConfig(_Strict):
    """How ``analysis`` reads the sweep (docs/protocol.md)."""
    focus: Optional[str] = None  # default: the first optimizer named muon, else the first one
    criterion: Literal[CRITERIA] = "final_gap"  # type: ignore[valid-type]
    x: Optional[str] = None
    y: Optional[str] = None
    level: float = Field(0.95, gt=0, lt=1)  # bootstrap CI level
    cells: Optional[list[int]] = None  # cells for curves_selected.png / rates.png (default: corners + extremes)
    rate_metric: Literal["gap", "grad_fro", "grad_nuc", "grad_op", "dist_fro"] = "gap"
    rate_window: Optional[tuple[float, float]] = None  # steps [t0, t1] of the vs-step fit (default: last decade)
    rate_horizon: Optional[str] = None  # a p_/h_ parameter that is the horizon T: fit final metric vs T across runs
    theory_threshold: float = Field(1.0, gt=0)  # Shen et al.: predict the focus method wins where r*L/L_star > this

    @model_serializer(mode="wrap")
    def _omit_unset_options(self, handler):
        """The options added after the first release appear in a dump only when they differ from
        their defaults, so that they leave the config hash of existing sweeps unchanged."""
        out = handler(self)
        for k in ("level", "cells", "rate_metric", "rate_window", "rate_horizon", "theory_threshold"):
            if k in out and getattr(self, k) == AnalysisConfig.model_fields[k].default:
                del out[k]
        return out


class SweepConfig(_Strict):
    name: str = "sweep"
    description: str = ""
    steps: int = Field(gt=0)
    log_points: int = Field(30, ge=2)
    seeds: list[int] = Field(min_length=1)
    target: float = Field(1e-2, gt=0, lt=1)
    divergence_factor: float = Field(1e6, gt=1)
    dtype: Literal[DTYPES] = "float32"  # type: ignore[valid-type]
    backend: Literal[BACKENDS] = "numpy"  # type: ignore[valid-type]
    memory_budget_mb: float = Field(512, gt=0)
    problem: ProblemConfig
    optimizers: list[OptimizerConfig] = Field(min_length=1)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)

    @model_validator(mode="after")
    def _unique_labels(self):
        keys = [o.key for o in self.optimizers]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"optimizer label {dup[0]!r} appears twice; give each a distinct 'label'")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds must be distinct")
        return self

    # --- derived ------------------------------------------------------------------------------
    def grid_axes(self) -> list[str]:
        return list(self.problem.grid)

    def problem_values(self) -> dict[str, list]:
        """Every problem parameter as a list of values (fixed ones and defaults have one)."""
        decl = problems.get(self.problem.kind).params
        out = {k: [p.default] for k, p in decl.items()}
        out.update({k: expand(v) for k, v in self.problem.fixed.items()})
        out.update({k: expand(v) for k, v in self.problem.grid.items()})
        return out

    def hparam_values(self, opt: OptimizerConfig) -> dict[str, list]:
        decl = runners.hparams(opt.name)
        out = {k: [p.default] for k, p in decl.items()}
        out.update({k: expand(v) for k, v in opt.hparams.items()})
        out["lr"] = expand(opt.lr)
        return out

    def focus(self) -> str:
        if self.analysis.focus is not None:
            return self.analysis.focus
        return next((o.key for o in self.optimizers if o.name == "muon"), self.optimizers[0].key)

    def digest(self) -> str:
        """Hash of what determines the runs (a resumed sweep must match it): the validated config
        without its name, description and [analysis] section, which change no run."""
        blob = json.dumps(self.model_dump(mode="json", exclude={"name", "description", "analysis"}), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _pydantic_message(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith(("function-", "tagged-union")))
    # pydantic reports each branch of a union; keep the location up to the user's own key
    parts = [p for p in loc.split(".") if p not in {"Linspace", "Logspace", "list[union[bool,int,float,str]]", "bool", "int", "float", "str"}]
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown field"
    return f"{'.'.join(parts) or 'config'}: {msg}"


def _check_semantics(cfg: SweepConfig) -> None:
    try:
        kind = problems.get(cfg.problem.kind)
    except ParamError as e:
        raise ConfigError(f"problem.{e}") from None
    both = set(cfg.problem.fixed) & set(cfg.problem.grid)
    if both:
        raise ConfigError(f"problem.grid.{sorted(both)[0]}: also given in problem.fixed; give it in one place")
    for section, entries in (("fixed", cfg.problem.fixed), ("grid", cfg.problem.grid)):
        for k, v in entries.items():
            if k not in kind.params:
                raise ConfigError(f"problem.{section}.{k}: unknown parameter of {kind.name}; allowed: {', '.join(kind.params)}")
            vals = expand(v)
            if not vals:
                raise ConfigError(f"problem.{section}.{k}: empty grid; give at least one value")
            for val in vals:
                try:
                    kind.params[k].check(k, val)
                except ParamError as e:
                    raise ConfigError(f"problem.{section}.{e}") from None
    for i, o in enumerate(cfg.optimizers):
        where = f"optimizers.{i}"
        try:
            decl = runners.hparams(o.name)
        except ParamError as e:
            raise ConfigError(f"{where}.{e}") from None
        items = dict(o.hparams)
        if "lr" in items:
            raise ConfigError(f"{where}.hparams.lr: give the learning-rate grid as {where}.lr")
        items["lr"] = o.lr
        for k, v in items.items():
            field = "lr" if k == "lr" else f"hparams.{k}"
            if k not in decl:
                raise ConfigError(f"{where}.{field}: unknown hyperparameter of {o.name}; allowed: {', '.join(decl)}")
            vals = expand(v)
            if not vals:
                raise ConfigError(f"{where}.{field}: empty grid; give at least one value")
            for val in vals:
                try:
                    decl[k].check(k, val)
                except ParamError as e:
                    raise ConfigError(f"{where}.{field.rsplit('.', 1)[0] + '.' if '.' in field else ''}{e}") from None
    labels = [o.key for o in cfg.optimizers]
    if cfg.analysis.focus is not None and cfg.analysis.focus not in labels:
        raise ConfigError(f"analysis.focus: {cfg.analysis.focus!r} is not one of the optimizers; allowed: {', '.join(labels)}")
    for ax in ("x", "y"):
        v = getattr(cfg.analysis, ax)
        if v is not None and v not in cfg.problem.grid:
            raise ConfigError(f"analysis.{ax}: {v!r} is not a swept problem parameter; allowed: {', '.join(cfg.problem.grid) or '(none swept)'}")


def parse_config(data: dict) -> SweepConfig:
    """Validate a config given as a dict (e.g. parsed TOML)."""
    try:
        cfg = SweepConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_pydantic_message(err)) from None
    _check_semantics(cfg)
    return cfg


def load_config(path: "str | Path") -> SweepConfig:
    """Read and validate a TOML sweep config."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config: no such file {str(path)!r}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config: {path.name} is not valid TOML ({e})") from None
    return parse_config(data)
