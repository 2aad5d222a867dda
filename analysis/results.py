"""The one reader of a result directory (docs/results.md): runs.csv, curves.csv, spectra.csv,
summary.csv, phase.csv, ..., manifest.json. Every table is read lazily, once, and cached;
the tuning (:meth:`Results.tuned`) is computed once per metric by the one tuning path
(:func:`analysis.tune.select`), so the pipeline and every rule see the same selection.

A missing or damaged file is a :class:`ResultsError` (a ``ValueError``) whose one-line message
names the file."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from . import integrity
from .options import CRITERIA, AnalysisOptions
from .tune import criterion as criterion_scores
from .tune import select


class ResultsError(ValueError):
    """A result directory lacks a file the analysis needs, or holds a damaged one."""


# the columns without which a grid cannot be analysed (docs/results.md)
REQUIRED = {
    "runs": ("run_id", "cell_id", "optimizer", "seed", "status"),
    "curves": ("run_id", "step"),
    "spectra": ("cell_id", "seed", "name", "index", "value"),
}
REBUILD = "re-run the sweep (the same `muonlab run CONFIG --out DIR`) to rebuild it from its parts"


class Results:
    """Lazy, cached access to a result directory ``out_dir``."""

    def __init__(self, out_dir: "str | Path", criterion: str | None = None, focus: str | None = None):
        """``criterion`` / ``focus`` override the sweep's analysis options."""
        self.dir = Path(out_dir)
        if criterion is not None and criterion not in CRITERIA:
            raise ValueError(f"criterion: unknown {criterion!r}; allowed: {', '.join(CRITERIA)}")
        self._overrides = {k: v for k, v in (("criterion", criterion), ("focus", focus)) if v is not None}
        self._tables: dict[str, pd.DataFrame] = {}
        self._tuned: dict = {}

    def __repr__(self) -> str:
        return f"Results({str(self.dir)!r})"

    # --- files ----------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        """Whether the directory holds ``<name>.csv``; one the manifest records as written but
        that is gone is a :class:`ResultsError` (the sweep wrote it: its absence is damage)."""
        path = self.dir / f"{name}.csv"
        if name in self._tables or path.exists():
            return True
        if path.name in self._records():
            raise ResultsError(f"{path}: damaged: missing (manifest.json records it as written); {REBUILD}")
        return False

    def table(self, name: str) -> pd.DataFrame:
        """``<name>.csv`` of the directory (cached). Raises :class:`ResultsError` naming the file
        when it is missing (also a ``FileNotFoundError``), does not match the integrity record
        the manifest holds for it (truncated, garbled), cannot be parsed, or lacks a column the
        analysis needs."""
        if name not in self._tables:
            path = self.dir / f"{name}.csv"
            if not self.has(name):
                raise _Missing(f"{path}: no such file")
            self._check_integrity(path)
            try:
                df = pd.read_csv(path)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
                raise ResultsError(
                    f"{path}: not a readable CSV table ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                ) from None
            except OSError as e:
                raise ResultsError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
            lacking = [c for c in REQUIRED.get(name, ()) if c not in df.columns]
            if lacking:
                raise ResultsError(f"{path}: damaged or not a muonlab {name} table: no column {lacking[0]!r}")
            if name == "runs" and df.empty:
                raise ResultsError(f"{path}: holds no runs (a header only)")
            self._tables[name] = df
        return self._tables[name]

    def _check_integrity(self, path: Path) -> None:
        """Refuse a grid that differs from the record the manifest holds for it; without a record
        (a directory written before records existed), refuse one whose last line is cut off."""
        files = self._records()
        if path.name in files:
            why = integrity.problem(path, files[path.name])
            if why is not None:
                rows = files[path.name].get("rows") if isinstance(files[path.name], dict) else None
                raise ResultsError(
                    f"{path}: damaged: {why}"
                    + (f" (manifest.json records {rows} rows)" if rows is not None else "")
                    + f"; {REBUILD}"
                )
        elif path.name in {f"{n}.csv" for n in REQUIRED}:
            try:
                with open(path, "rb") as fh:
                    fh.seek(0, 2)
                    size = fh.tell()
                    fh.seek(max(size - 1, 0))
                    cut = size > 0 and fh.read(1) != b"\n"
            except OSError as e:
                raise ResultsError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
            if cut:
                raise ResultsError(f"{path}: damaged: truncated (its last line is cut off); {REBUILD}")

    def check_files(self) -> None:
        """Check every grid the directory holds against its record (or for a cut-off last line)
        without parsing it: a :class:`ResultsError` naming the first damaged one."""
        for name in REQUIRED:
            if self.has(name):
                self._check_integrity(self.dir / f"{name}.csv")

    def _records(self) -> dict:
        """The manifest's integrity records of the grids ({} without a manifest or records)."""
        if not (self.dir / "manifest.json").exists():
            return {}
        files = self.manifest.get("files")
        return {n: r for n, r in files.items() if n == Path(n).name} if isinstance(files, dict) else {}

    @property
    def runs(self) -> pd.DataFrame:
        return self.table("runs")

    @property
    def curves(self) -> pd.DataFrame:
        return self.table("curves")

    @property
    def summary(self) -> pd.DataFrame:
        return self.table("summary")

    @property
    def phase(self) -> pd.DataFrame:
        return self.table("phase")

    @cached_property
    def spectra(self) -> pd.DataFrame:
        """spectra.csv (cell_id, seed, name, index, value): the spectra the theory is stated in,
        written by the lab from each problem's ``spectra()``; empty when the sweep wrote none."""
        if not self.has("spectra"):
            return pd.DataFrame(columns=["cell_id", "seed", "name", "index", "value"])
        return self.table("spectra")

    @cached_property
    def manifest(self) -> dict:
        path = self.dir / "manifest.json"
        if not path.exists():
            raise ResultsError(f"{path}: no such file")
        try:
            data = json.loads(path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ResultsError(f"{path}: not a readable manifest (JSON)") from None
        except OSError as e:
            raise ResultsError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
        if not isinstance(data, dict):
            raise ResultsError(f"{path}: not a muonlab manifest (a JSON {type(data).__name__}, not an object)")
        return data

    @cached_property
    def config(self) -> dict:
        """The sweep config as the manifest holds it (``{}`` without one)."""
        if not (self.dir / "manifest.json").exists():
            return {}
        cfg = self.manifest.get("config") or {}
        if not isinstance(cfg, dict):
            raise ResultsError(f"{self.dir / 'manifest.json'}: config: not a JSON object (got {type(cfg).__name__})")
        return cfg

    @cached_property
    def options(self) -> AnalysisOptions:
        """The sweep's ``[analysis]`` options merged with the defaults (analysis/options.py)."""
        section = self.config.get("analysis") or {}
        if not isinstance(section, dict):
            raise ResultsError(f"{self.dir / 'manifest.json'}: config.analysis: not a JSON object")
        try:
            return AnalysisOptions.read({**section, **self._overrides})
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(x) for x in err.get("loc", ())) or "?"
            raise ResultsError(
                f"{self.dir / 'manifest.json'}: config.analysis.{field}: got {err.get('input')!r}; {err.get('msg')}"
            ) from None
        except ValueError as e:
            raise ResultsError(f"{self.dir / 'manifest.json'}: config.analysis: {str(e).splitlines()[0]}") from None

    # --- what was run ---------------------------------------------------------------------------
    @cached_property
    def labels(self) -> list[str]:
        """Optimizer labels in config order (runs.csv order without a config)."""
        opts = self.config.get("optimizers") or []
        return [o.get("label") or o["name"] for o in opts] or list(dict.fromkeys(self.runs["optimizer"]))

    @cached_property
    def kinds(self) -> dict[str, str]:
        """{label: optimizer kind (registry name)}."""
        if "optimizer_kind" in self.runs:
            return dict(self.runs.drop_duplicates("optimizer").set_index("optimizer")["optimizer_kind"])
        return {o.get("label") or o["name"]: o["name"] for o in self.config.get("optimizers") or []}

    @cached_property
    def families(self) -> dict[str, str]:
        """{label: optimizer family (spectral / sign / euclidean / adaptive / layerwise)}, from
        runs.csv's ``optimizer_family``; empty for a directory written before that column."""
        if "optimizer_family" not in self.runs:
            return {}
        return dict(self.runs.drop_duplicates("optimizer").set_index("optimizer")["optimizer_family"])

    @cached_property
    def problem(self) -> str | None:
        """The problem kind of the sweep (runs.csv ``problem``, else the config's)."""
        if "problem" in self.runs:
            return str(self.runs["problem"].iloc[0])
        return (self.config.get("problem") or {}).get("kind")

    @cached_property
    def cells(self) -> pd.DataFrame:
        """One row per cell: cell_id and its p_ columns, sorted by cell_id."""
        pcols = [c for c in self.runs.columns if c.startswith("p_")]
        return self.runs[["cell_id", *pcols]].drop_duplicates("cell_id").sort_values("cell_id").reset_index(drop=True)

    def grid_values(self, column: str = "h_lr") -> dict[str, list]:
        """{optimizer label: the sorted distinct values of a runs.csv column it ran} (the grid as
        run, e.g. the lr values)."""
        if column not in self.runs:
            return {}
        return {o: sorted(g.dropna().unique().tolist()) for o, g in self.runs.groupby("optimizer", sort=False)[column]}

    @cached_property
    def swept(self) -> list[str]:
        """The swept problem parameters (config order; else the p_ columns that vary)."""
        grid = (self.config.get("problem") or {}).get("grid")
        if grid is not None:
            return list(grid)
        return [c[2:] for c in self.runs.columns if c.startswith("p_") and self.runs[c].nunique() > 1]

    def resolve_column(self, name: str | None) -> str | None:
        """The runs.csv column a parameter name stands for (itself, ``p_<name>`` or ``h_<name>``)."""
        if not name:
            return None
        return next((c for c in (name, f"p_{name}", f"h_{name}") if c in self.runs), None)

    @cached_property
    def by(self) -> tuple[str, ...]:
        """Columns tuned per value instead of over (the horizon hyperparameter of ``rate_horizon``)."""
        h = self.resolve_column(self.options.rate_horizon)
        return (h,) if h and h.startswith("h_") else ()

    def constant(self, name: str) -> pd.Series:
        """Per cell: the median over its runs of the problem constant ``c_<name>`` (empty when
        runs.csv has no such column)."""
        col = f"c_{name}"
        if col not in self.runs:
            return pd.Series(dtype=float, name=name)
        return self.runs.groupby("cell_id")[col].median().astype(float).rename(name)

    def spectrum(self, name: str, cell_id, seed=None) -> np.ndarray:
        """The spectrum ``name`` of a cell's instance (seed ``seed``, else the cell's first seed)
        as an array ordered by index; empty when spectra.csv does not hold it."""
        s = self.spectra
        s = s[(s["name"] == name) & (s["cell_id"] == cell_id)]
        if s.empty:
            return np.array([])
        s = s[s["seed"] == (s["seed"].min() if seed is None else seed)]
        return s.sort_values("index")["value"].to_numpy(float)

    # --- scores and tuning ----------------------------------------------------------------------
    def _curves_stat(self, col: str, how: str) -> pd.Series:
        c = self.curves
        if col not in c:
            raise ValueError(f"curves.csv has no column {col!r}")
        c = c[c["step"] >= 1]
        g = c.groupby("run_id")[col]
        return g.min() if how == "best" else g.mean()

    def scores(self, metric: str = "criterion") -> pd.Series:
        """Per-run score (lower is better) aligned with runs.csv, named ``metric``: ``criterion``
        (the sweep's tuning criterion), a criterion name, ``final_<x>`` or another runs.csv
        column, ``best_<x>`` / ``mean_<x>`` (min / mean over the logged steps >= 1 of a curves.csv
        column). Diverged runs score +inf."""
        runs = self.runs
        name = self.options.criterion if metric == "criterion" else metric
        if name in CRITERIA:
            curves = (
                self.curves if (name == "auc_log_gap" or (name == "steps_to_target" and name not in runs)) else None
            )
            return criterion_scores(runs, name, curves).rename(metric)
        if metric.startswith(("best_", "mean_")) and metric not in runs:
            how, col = metric.split("_", 1)
            v = runs["run_id"].map(self._curves_stat(col, how)).astype(float)
        elif metric in runs:
            v = runs[metric].astype(float)
        else:
            raise ValueError(f"metric {metric!r}: not a runs.csv column, nor best_/mean_ of a curves.csv column")
        v = v.where(runs["status"] == "ok", np.inf)
        return v.fillna(np.inf).rename(metric)

    def tuned(self, criterion: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(summary, sensitivity, chosen) of the lab's tuning protocol (:func:`analysis.tune.select`:
        median over seeds per hyperparameter point, best point per cell and optimizer, grouped on
        :attr:`by`) on ``criterion`` (default: the sweep's; any metric of :meth:`scores`).
        ``summary`` and ``sensitivity`` carry the cells' p_ columns; ``chosen`` holds the
        per-seed rows (run_id, cell_id, optimizer, seed, status, score) of the tuned points.
        Computed once per criterion."""
        key = criterion or self.options.criterion
        if key == "criterion":
            key = self.options.criterion
        if key not in self._tuned:
            summary, sens, chosen = select(self.runs, self.scores(key), self.options.level, self.by)
            self._tuned[key] = (self.cells.merge(summary, on="cell_id"), self.cells.merge(sens, on="cell_id"), chosen)
        return self._tuned[key]


class _Missing(ResultsError, FileNotFoundError):
    """A table the directory does not hold."""
