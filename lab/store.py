"""The result store: one part file pair per finished job, written atomically (temp file +
rename), a marker per failed job, a manifest, and the result grids assembled from the parts.
A re-run skips finished jobs (and retries failed ones)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from .errors import ConfigError

TABLES = ("spectra", "curves", "runs")  # a job's part files, in the order written (runs last: it marks the job done)
GRIDS = ("runs", "curves", "spectra", "summary", "phase")  # the assembled grids a --force run discards


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Store:
    def __init__(self, out_dir: "str | Path"):
        self.dir = Path(out_dir)
        self.parts = self.dir / "parts"

    # --- manifest -----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def read_manifest(self) -> dict | None:
        if not self.manifest_path.exists():
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(
                f"out: {self.manifest_path} is not a readable manifest; use another --out directory"
            ) from None

    def write_manifest(self, manifest: dict) -> None:
        _atomic_write(self.manifest_path, lambda fh: json.dump(manifest, fh, indent=2, sort_keys=True, default=str))

    def check(self, config_hash: str, force: bool) -> None:
        """Refuse to mix two configs in one directory (writes nothing)."""
        if self.dir.exists() and not self.dir.is_dir():
            raise ConfigError(f"out: {self.dir} exists and is not a directory")
        old = self.read_manifest()
        if old is not None and old.get("config_hash") != config_hash and not force:
            raise ConfigError(
                f"out: {self.dir} holds a sweep of a different config (hash {old.get('config_hash')}); "
                "use another --out directory, or --force to discard it"
            )

    def begin(self, config_hash: str, force: bool) -> None:
        """Open the directory for this config; ``force`` discards a different config's results.
        Temp files left by a killed writer are removed (they never became parts)."""
        self.check(config_hash, force)
        old = self.read_manifest()
        if old is not None and old.get("config_hash") != config_hash:
            shutil.rmtree(self.parts, ignore_errors=True)
            for name in GRIDS:
                (self.dir / f"{name}.csv").unlink(missing_ok=True)
        self.parts.mkdir(parents=True, exist_ok=True)
        for tmp in self.parts.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    # --- parts --------------------------------------------------------------------------------
    def _keys(self, suffix: str) -> set[str]:
        if not self.parts.exists():
            return set()
        return {p.name[: -len(suffix)] for p in self.parts.glob("*" + suffix)}

    def done(self) -> set[str]:
        """Keys of finished jobs (the runs part is written last, so it marks completion)."""
        return self._keys(".runs.csv")

    def failed(self) -> dict[str, dict]:
        """Failed jobs that have not finished since: key -> {"error", "detail", "runs"}."""
        done = self.done()
        out = {}
        for key in sorted(self._keys(".failed.json") - done):
            try:
                out[key] = json.loads((self.parts / f"{key}.failed.json").read_text())
            except (OSError, json.JSONDecodeError):
                continue  # removed or replaced while we looked: the job is being retried
        return out

    def write_part(self, key: str, tables: dict[str, pd.DataFrame]) -> None:
        for name in TABLES:
            if name in tables:  # spectra: absent from parts written before spectra.csv existed
                _atomic_write(self.parts / f"{key}.{name}.csv", lambda fh, df=tables[name]: df.to_csv(fh, index=False))
        (self.parts / f"{key}.failed.json").unlink(missing_ok=True)

    def write_failure(self, key: str, runs: int, error: str, detail: str = "") -> None:
        info = {"key": key, "runs": runs, "error": error, "detail": detail}
        _atomic_write(self.parts / f"{key}.failed.json", lambda fh: json.dump(info, fh, indent=2))

    def record(self, outcome) -> None:
        """Write what a job returned (a :class:`lab.jobs.JobOutcome`): its parts, or its failure.
        The one path by which every executor stores a finished job."""
        if outcome.ok:
            self.write_part(outcome.key, outcome.tables)
        else:
            self.write_failure(outcome.key, outcome.runs, outcome.error, outcome.detail)

    def read_parts(self, name: str, keys, optional: bool = False) -> pd.DataFrame:
        """The parts ``<key>.<name>.csv`` of ``keys`` concatenated; ``optional``: skip missing ones."""
        paths = [self.parts / f"{k}.{name}.csv" for k in sorted(keys)]
        frames = [pd.read_csv(p) for p in paths if not optional or p.exists()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # --- result grids -------------------------------------------------------------------------
    def write_table(self, name: str, df: pd.DataFrame) -> Path:
        path = self.dir / f"{name}.csv"
        _atomic_write(path, lambda fh: df.to_csv(fh, index=False))
        return path
