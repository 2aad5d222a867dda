"""The sweep config (TOML), validated with pydantic and against the problem and optimizer
registries. Every error becomes a :class:`lab.errors.ConfigError` whose one-line message names
the field and what is allowed."""

from __future__ import annotations

import functools
import hashlib
import json
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer

import problems
import runners
from problems.params import ParamError

from analysis.options import CRITERIA as _CRITERIA
from analysis.options import AnalysisOptions
from problems.backend import BACKENDS, DTYPES
from .errors import ConfigError
from .grids import GridValue, expand

CRITERIA = tuple(_CRITERIA)  # the tuning criteria (names; definitions in analysis.options.CRITERIA)
MAX_RUNS = 1_000_000  # runs in one sweep (the run table is held in memory)
MAX_RUN_STEPS = 10**10  # default of ``max_run_steps``: a guard against a mistyped steps or grid, raise it on purpose
MAX_STEPS = 10**9  # steps of one run (a Python loop of about 10 us at the least per step: over a day)
MAX_LOG_POINTS = 100_000  # logged steps per run (curves.csv has runs x logged steps rows)
LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-")

Seed = Annotated[int, Field(ge=0, lt=2**63)]  # the oracle streams key on int64 seeds
Number = Annotated[float, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    # strict: "100" is not an integer, true is not a number, 2.5 is not an integer
    model_config = ConfigDict(extra="forbid", strict=True)


class ProblemConfig(_Strict):
    kind: str
    fixed: dict[str, GridValue] = Field(default_factory=dict)
    grid: dict[str, GridValue] = Field(default_factory=dict)


class OptimizerConfig(_Strict):
    name: str
    label: Optional[str] = None
    lr: GridValue
    hparams: dict[str, GridValue] = Field(default_factory=dict)

    @field_validator("label")
    @classmethod
    def _label(cls, v):
        # labels name columns and part files: keep them to a safe alphabet
        if v is not None and (not v or not set(v) <= LABEL_CHARS):
            raise ValueError(f"got {v!r}; allowed: a non-empty name of letters, digits and _ . + -")
        return v

    @property
    def key(self) -> str:
        return self.label or self.name


AnalysisConfig = AnalysisOptions  # the [analysis] section: its fields and defaults live in analysis/options.py


@dataclass(frozen=True)
class Grids:
    """A config's grids expanded to lists of values: ``problem`` {parameter: values} (defaults
    and fixed ones have one value), ``hparams`` {optimizer label: {hyperparameter: values}}."""

    problem: dict[str, list]
    hparams: dict[str, dict[str, list]]


class RefineConfig(_Strict):
    """``[refine]``: adaptive refinement of each tuned learning rate (lab/refine.py, docs/protocol.md).
    Rounds add runs at the log-midpoints between the tuned lr and its neighbours (and beyond the
    grid's edge when the optimum sits there) until the local spacing is <= ``resolution`` decades."""

    resolution: Number = Field(0.0625, gt=0, le=2)  # decades of lr
    methods: Optional[list[str]] = None  # optimizer labels to refine (default: every optimizer)
    criterion: Optional[Literal[CRITERIA]] = None  # type: ignore[valid-type]  # default: analysis.criterion
    max_rounds: int = Field(8, ge=1, le=64)
    extend_edges: bool = True


class SweepConfig(_Strict):
    name: str = "sweep"
    description: str = ""
    steps: int = Field(gt=0, le=MAX_STEPS)
    log_points: int = Field(30, ge=2, le=MAX_LOG_POINTS)
    seeds: list[Seed] = Field(min_length=1)
    target: Number = Field(1e-2, gt=0, lt=1)
    divergence_factor: Number = Field(1e6, gt=1)
    dtype: Literal[DTYPES] = "float32"  # type: ignore[valid-type]
    backend: Literal[BACKENDS] = "numpy"  # type: ignore[valid-type]
    memory_budget_mb: Number = Field(512, gt=0)  # working set of one job (the plan chunks jobs to it)
    # the sweep's budget of run-steps (runs x steps, refined runs not counted): refused before any job
    max_run_steps: int = Field(MAX_RUN_STEPS, gt=0)
    # the sweep's memory budget: its estimated peak (lab.preflight) must fit it and this machine's
    # available memory (default: the machine's only)
    max_memory_gb: Optional[Number] = Field(None, gt=0)
    # every-step accumulators (runners.accumulate; docs/results.md): off by default, since they
    # cost the exact loss and gradient at every step
    accumulate: list[Literal[runners.ACCUMULABLE]] = Field(default_factory=list)  # type: ignore[valid-type]
    problem: ProblemConfig
    optimizers: list[OptimizerConfig] = Field(min_length=1)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    refine: Optional[RefineConfig] = None

    @model_serializer(mode="wrap")
    def _omit_unset_options(self, handler):
        """Options added after the first release (``accumulate``, ``[refine]``, the budgets) appear in a dump
        only when set, so that they leave the config hash and manifest of existing sweeps unchanged."""
        out = handler(self)
        if isinstance(out, dict):
            if not self.accumulate:
                out.pop("accumulate", None)
            if self.max_run_steps == MAX_RUN_STEPS:
                out.pop("max_run_steps", None)
            if self.max_memory_gb is None:
                out.pop("max_memory_gb", None)
            if out.get("refine", 0) is None:
                del out["refine"]
        return out

    # --- derived ------------------------------------------------------------------------------
    def grid_axes(self) -> list[str]:
        return list(self.problem.grid)

    @functools.cached_property
    def grids(self) -> "Grids":
        """The expanded grids, derived once per validated config (the sweep reads them from here)."""
        decl = problems.get(self.problem.kind).params
        prob = {k: [p.default] for k, p in decl.items()}
        prob.update({k: expand(v) for k, v in self.problem.fixed.items()})
        prob.update({k: expand(v) for k, v in self.problem.grid.items()})
        hp = {}
        for opt in self.optimizers:
            vals = {k: [p.default] for k, p in runners.hparams(opt.name).items()}
            vals.update({k: expand(v) for k, v in opt.hparams.items()})
            vals["lr"] = expand(opt.lr)
            hp[opt.key] = vals
        return Grids(problem=prob, hparams=hp)

    def digest(self) -> str:
        """Hash of what determines the runs (a resumed sweep must match it): the validated config
        without its name, description and [analysis] section, which change no run."""
        blob = json.dumps(self.model_dump(mode="json", exclude={"name", "description", "analysis"}), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


_TYPE_WORDS = {
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
    "list_type": "a list",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _model_at(loc) -> "type[BaseModel] | None":
    """The config model a location points into (to list the fields allowed there)."""
    model: type[BaseModel] = SweepConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        nxt = None
        stack = [field.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                nxt = t
                break
            stack.extend(typing.get_args(t))
        if nxt is None:
            return None
        model = nxt
    return model


def _pydantic_message(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = e["loc"]
    where = ".".join(str(p) for p in loc) or "config"
    kind, given = e["type"], e.get("input")
    msg = e["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = f"; allowed: {', '.join(model.model_fields)}" if model is not None else ""
        return f"{where}: unknown field{allowed}"
    if kind == "missing":
        return f"{where}: required field missing"
    if kind in _TYPE_WORDS:
        return f"{where}: got {given!r}; allowed: {_TYPE_WORDS[kind]}"
    if kind == "value_error":
        return f"{where}: {msg}"
    if kind == "too_short":
        return f"{where}: got {given!r}; allowed: a list of at least {e['ctx']['min_length']} item(s)"
    return f"{where}: got {given!r}; allowed: {msg.removeprefix('Input should be ')}"


def _duplicate(values: list):
    """The first value that appears twice (same type and equal), or None; linear time, so that a
    list of 10^5 seeds is checked at once."""
    seen, unhashable = set(), []
    for v in values:
        try:
            if (type(v), v) in seen:
                return v
            seen.add((type(v), v))
        except TypeError:  # e.g. a list value: compared one by one
            if any(type(v) is type(w) and v == w for w in unhashable):
                return v
            unhashable.append(v)
    return None


def _check_values(where: str, name: str, decl, v) -> list:
    """Expand one grid entry and check every value against its declaration."""
    vals = expand(v)
    if not vals:
        raise ConfigError(f"{where}: empty grid; give at least one value")
    for val in vals:
        if isinstance(val, int) and not isinstance(val, bool) and not -(2**63) <= val < 2**63:
            raise ConfigError(f"{where}: got {val}; allowed: an integer of at most 19 digits (int64)")
        try:
            decl.check(name, val)
        except ParamError as e:
            raise ConfigError(f"{where}: {str(e).split(': ', 1)[1]}") from None
    dup = _duplicate(vals)
    if dup is not None:
        raise ConfigError(f"{where}: the value {dup!r} appears twice; allowed: distinct values")
    return vals


def _check_semantics(cfg: SweepConfig) -> None:
    dup = _duplicate(cfg.seeds)
    if dup is not None:
        raise ConfigError(f"seeds: the seed {dup} appears twice; allowed: distinct seeds")
    dup = _duplicate(cfg.accumulate)
    if dup is not None:
        raise ConfigError(
            f"accumulate: {dup!r} appears twice; allowed: each of {', '.join(runners.ACCUMULABLE)} at most once"
        )
    try:
        kind = problems.get(cfg.problem.kind)
    except ParamError as e:
        raise ConfigError(f"problem.{e}") from None
    both = set(cfg.problem.fixed) & set(cfg.problem.grid)
    if both:
        raise ConfigError(f"problem.grid.{sorted(both)[0]}: also given in problem.fixed; give it in one place")
    size = len(cfg.seeds)
    for section, entries in (("fixed", cfg.problem.fixed), ("grid", cfg.problem.grid)):
        for k, v in entries.items():
            where = f"problem.{section}.{k}"
            if k not in kind.params:
                raise ConfigError(f"{where}: unknown parameter of {kind.name}; allowed: {', '.join(kind.params)}")
            vals = _check_values(where, k, kind.params[k], v)
            if section == "fixed" and len(vals) > 1:
                raise ConfigError(
                    f"{where}: a fixed parameter takes one value, got {len(vals)}; sweep it under problem.grid instead"
                )
            size *= len(vals)
    points = 0
    for i, o in enumerate(cfg.optimizers):
        where = f"optimizers.{i}"
        try:
            decl = runners.hparams(o.name)
        except ParamError as e:
            raise ConfigError(f"{where}.{e}") from None
        if "lr" in o.hparams:
            raise ConfigError(f"{where}.hparams.lr: give the learning-rate grid as {where}.lr")
        opt_points = 1
        for k, v in {"lr": o.lr, **o.hparams}.items():
            field = f"{where}.lr" if k == "lr" else f"{where}.hparams.{k}"
            if k not in decl:
                raise ConfigError(f"{field}: unknown hyperparameter of {o.name}; allowed: {', '.join(decl)}")
            opt_points *= len(_check_values(field, k, decl[k], v))
        points += opt_points
    if size * points > MAX_RUNS:
        raise ConfigError(
            f"problem.grid: the sweep expands to {size * points:,} runs; allowed: at most "
            f"{MAX_RUNS:,} in one sweep (split it into several configs)"
        )
    if size * points * cfg.steps > cfg.max_run_steps:
        raise ConfigError(
            f"steps: {size * points:,} runs x {cfg.steps:,} steps = {size * points * cfg.steps:.3g} run-steps; "
            f"allowed: at most max_run_steps = {cfg.max_run_steps:.3g} (fewer steps or runs, or raise max_run_steps)"
        )
    labels = [o.key for o in cfg.optimizers]
    dup = _duplicate(labels)
    if dup is not None:
        i = len(labels) - 1 - labels[::-1].index(dup)
        raise ConfigError(
            f"optimizers.{i}.label: the label {dup!r} is taken by another optimizer; "
            "allowed: a distinct 'label' for each optimizer"
        )
    if cfg.analysis.focus is not None and cfg.analysis.focus not in labels:
        raise ConfigError(
            f"analysis.focus: {cfg.analysis.focus!r} is not one of the optimizers; allowed: {', '.join(labels)}"
        )
    for ax in ("x", "y"):
        v = getattr(cfg.analysis, ax)
        if v is not None and v not in cfg.problem.grid:
            raise ConfigError(
                f"analysis.{ax}: {v!r} is not a swept problem parameter; allowed: "
                f"{', '.join(cfg.problem.grid) or '(none swept)'}"
            )
    if cfg.analysis.x is not None and cfg.analysis.x == cfg.analysis.y:
        others = [a for a in cfg.problem.grid if a != cfg.analysis.x]
        raise ConfigError(
            f"analysis.y: {cfg.analysis.y!r} is also analysis.x; allowed: another swept parameter "
            f"({', '.join(others) or 'none: sweep a second parameter'})"
        )


def _check_analysis(cfg: SweepConfig) -> None:
    """The [analysis] fields that depend on the sweep (the cell count, the logged steps, the
    parameter names), checked here so that a mistake fails before the first job, not after the sweep."""
    a = cfg.analysis
    n_cells = 1
    for v in cfg.grids.problem.values():
        n_cells *= len(v)
    if a.cells is not None and not a.cells:
        raise ConfigError("analysis.cells: got []; allowed: a list of cell ids, or no cells field for the default")
    for i, c in enumerate(a.cells or []):
        if not 0 <= c < n_cells:
            raise ConfigError(
                f"analysis.cells.{i}: got {c}; allowed: cell ids 0..{n_cells - 1} (the sweep has {n_cells} cell(s))"
            )
    if a.rate_window is not None:
        t0, t1 = a.rate_window
        if not 1 <= t0 < t1 <= cfg.steps:
            raise ConfigError(
                f"analysis.rate_window: got [{t0:g}, {t1:g}]; allowed: [t0, t1] with 1 <= t0 < t1 <= "
                f"steps = {cfg.steps}"
            )
        logged = runners.log_steps(cfg.steps, cfg.log_points)
        inside = int(((logged >= t0) & (logged <= t1)).sum())
        if inside < 2:
            raise ConfigError(
                f"analysis.rate_window: [{t0:g}, {t1:g}] holds {inside} logged step(s) (log_points = "
                f"{cfg.log_points}); allowed: a window holding at least 2 logged steps (widen it or raise log_points)"
            )
    if a.rate_horizon is not None:
        names = set(cfg.grids.problem) | {k for hp in cfg.grids.hparams.values() for k in hp}
        if a.rate_horizon not in names:
            raise ConfigError(
                f"analysis.rate_horizon: {a.rate_horizon!r} is not a problem parameter or hyperparameter of this "
                f"sweep; allowed: one of {', '.join(sorted(names))}"
            )


def _check_refine(cfg: SweepConfig) -> None:
    r = cfg.refine
    if r is None:
        return
    labels = [o.key for o in cfg.optimizers]
    for i, m in enumerate(r.methods or []):
        if m not in labels:
            raise ConfigError(f"refine.methods.{i}: got {m!r}; allowed: {', '.join(labels)}")
    for i, o in enumerate(cfg.optimizers):
        if (r.methods is None or o.key in r.methods) and any(v <= 0 for v in expand(o.lr)):
            raise ConfigError(f"optimizers.{i}.lr: refinement works on log lr; allowed: positive learning rates")


def parse_config(data: dict) -> SweepConfig:
    """Validate a config given as a dict (e.g. parsed TOML)."""
    try:
        cfg = SweepConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_pydantic_message(err)) from None
    _check_semantics(cfg)
    _check_analysis(cfg)
    _check_refine(cfg)
    _check_accumulated(cfg)
    return cfg


def _check_accumulated(cfg: SweepConfig) -> None:
    """A criterion read from an every-step accumulator needs that accumulator switched on."""
    from analysis.options import ACCUMULATED  # noqa: PLC0415

    for where, crit in (
        ("analysis.criterion", cfg.analysis.criterion),
        ("refine.criterion", cfg.refine.criterion if cfg.refine else None),
    ):
        need = ACCUMULATED.get(crit)
        if need is not None and need not in cfg.accumulate:
            raise ConfigError(
                f"{where}: got {crit!r} without accumulate = [{need!r}]; allowed: add {need!r} to "
                f"accumulate, or a criterion of {', '.join(c for c in CRITERIA if c not in ACCUMULATED)}"
            )


def load_config(path: "str | Path") -> SweepConfig:
    """Read and validate a TOML sweep config."""
    return parse_config(read_toml(path, "config"))


def read_toml(path: "str | Path", field: str = "config") -> dict:
    """The table of a TOML file; a missing or unreadable file is a one-line error naming it."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{field}: no such file {str(path)!r}") from None
    except IsADirectoryError:
        raise ConfigError(f"{field}: {str(path)!r} is a directory; allowed: a TOML file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{field}: {str(path)!r} is not UTF-8 text (byte {e.start}); allowed: a UTF-8 TOML file"
        ) from None
    except OSError as e:
        raise ConfigError(f"{field}: cannot read {str(path)!r} ({e.strerror or type(e).__name__})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{field}: {path.name} is not valid TOML ({e})") from None
