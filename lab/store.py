"""The result store: one part file pair per finished job, written atomically (temp file +
rename), a manifest, and the result grids assembled from the parts. A re-run skips finished jobs."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from .errors import ConfigError

TABLES = ("runs", "curves")


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
        return json.loads(self.manifest_path.read_text())

    def write_manifest(self, manifest: dict) -> None:
        _atomic_write(self.manifest_path, lambda fh: json.dump(manifest, fh, indent=2, sort_keys=True, default=str))

    def begin(self, config_hash: str, force: bool) -> None:
        """Refuse to mix two configs in one directory; ``force`` discards the old parts."""
        old = self.read_manifest()
        if old is not None and old.get("config_hash") != config_hash:
            if not force:
                raise ConfigError(
                    f"out: {self.dir} holds a sweep of a different config (hash {old.get('config_hash')}); "
                    "use another --out directory, or --force to discard it"
                )
            shutil.rmtree(self.parts, ignore_errors=True)
        self.parts.mkdir(parents=True, exist_ok=True)

    # --- parts --------------------------------------------------------------------------------
    def done(self) -> set[str]:
        """Keys of finished jobs (the runs part is written last, so it marks completion)."""
        if not self.parts.exists():
            return set()
        return {p.name[: -len(".runs.csv")] for p in self.parts.glob("*.runs.csv")}

    def write_part(self, key: str, tables: dict[str, pd.DataFrame]) -> None:
        for name in ("curves", "runs"):
            _atomic_write(self.parts / f"{key}.{name}.csv", lambda fh, df=tables[name]: df.to_csv(fh, index=False))

    def read_parts(self, name: str, keys) -> pd.DataFrame:
        frames = [pd.read_csv(self.parts / f"{k}.{name}.csv") for k in sorted(keys)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # --- result grids -------------------------------------------------------------------------
    def write_table(self, name: str, df: pd.DataFrame) -> Path:
        path = self.dir / f"{name}.csv"
        _atomic_write(path, lambda fh: df.to_csv(fh, index=False))
        return path
