"""The result store: one set of part files per finished job plus its index, a marker per failed
job, a manifest, and the result grids assembled from the parts. Every file is written atomically
(temp file + rename) with the permissions of an ordinary file (0666 less the umask).

A job's parts (``parts/<key>.spectra.csv``, ``.curves.csv``, ``.runs.csv``) are followed by its
index ``parts/<key>.done.json``, which records each part's row count, byte count and SHA-256
(:mod:`analysis.integrity`) and marks the job done. A job is done only while its index verifies:
a truncated, garbled or deleted part makes it *damaged*, and a re-run computes it again.

The store writes only where it may: a new or empty directory, or a muonlab sweep directory (one
holding a muonlab manifest.json). It deletes only files it recognizes as its own (docs/results.md,
"What the lab writes, and what it deletes")."""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from analysis import integrity

from .errors import ConfigError

TABLES = ("spectra", "curves", "runs")  # a job's part files, in the order written (its index follows)
GRID_TABLES = ("runs", "curves", "spectra")  # the grids assembled from the parts
# what the analysis of a sweep writes under fixed names (for manifests that predate "outputs")
ANALYSIS_FILES = (
    "summary.csv",
    "sensitivity.csv",
    "phase.csv",
    "profile.csv",
    "rates.csv",
    "rates_horizon.csv",
    "modes.csv",
    "analysis.json",
    "report.md",
    "report.html",
    "refine_edges.toml",
)
_GRID = r"(?:manifest\.json|(?:runs|curves|spectra|refine_round_\d+)\.csv)"
_PART = r".+\.(?:(?:spectra|curves|runs)\.csv|done\.json|failed\.json)"
OWN_GRID = re.compile(rf"^{_GRID}$")  # lab-written files in the sweep directory itself
OWN_PART = re.compile(rf"^{_PART}$")  # lab-written files in parts/
TMP_GRID = re.compile(rf"^\.{_GRID}\.[^.]+\.tmp$")  # temp files of an interrupted writer
TMP_PART = re.compile(rf"^\.{_PART}\.[^.]+\.tmp$")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file ``.<name>.<random>.tmp`` renamed into place;
    the file gets 0666 less the umask, like any file the user creates. A write the system refuses
    (no space, a directory in the way) is a one-line error naming the file."""
    try:
        _atomic_write(path, data)
    except OSError as e:
        raise ConfigError(f"out: cannot write {path} ({e.strerror or type(e).__name__})") from None


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the kernel applies the umask
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def utc_now() -> str:
    """Now, UTC, to the second (ISO 8601): the manifest's and the indexes' timestamps."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_manifest(data) -> bool:
    """Whether ``data`` (a parsed manifest.json) is a muonlab manifest."""
    return isinstance(data, dict) and isinstance(data.get("config_hash"), str) and isinstance(data.get("config"), dict)


class Store:
    def __init__(self, out_dir: "str | Path", field: str = "out"):
        self.dir = Path(out_dir)
        self.field = field  # what error messages call the directory (the CLI option or argument)
        self.parts = self.dir / "parts"
        self.session: int | None = None  # the manifest's session index, recorded in each job's index
        self.grids: dict[str, dict] = {}  # integrity records of the grids written by this store
        self._verified: dict[str, tuple] = {}  # key -> the stat signature its index verified at

    # --- manifest -----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def read_manifest(self) -> dict | None:
        """The manifest, or None when there is none; a file that is not a muonlab manifest is a
        one-line error naming it."""
        path = self.manifest_path
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{self.field}: {path} is not a readable manifest (not JSON)") from None
        except OSError as e:
            raise ConfigError(f"{self.field}: {path} cannot be read ({e.strerror or type(e).__name__})") from None
        if not is_manifest(data):
            names = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
            what = (
                "a JSON object without config_hash and config"
                if isinstance(data, dict)
                else f"{names.get(type(data), 'null')}, not a JSON object"
            )
            raise ConfigError(f"{self.field}: {path} is not a muonlab manifest ({what})")
        return data

    def write_manifest(self, manifest: dict) -> None:
        atomic_write(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())

    def _check_location(self) -> None:
        d = self.dir
        if d.exists() and not d.is_dir():
            raise ConfigError(f"out: {d} exists and is not a directory")
        p = d
        while not p.exists() and p != p.parent:
            p = p.parent
        if not p.is_dir():
            raise ConfigError(f"out: {d}: {p} is a file, not a directory")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ConfigError(f"out: {d}: {'it' if p == d else p} is not writable")

    def _own_leftover(self, p: Path) -> bool:
        """What a start-up killed before the manifest existed can leave: a manifest temp file, an
        empty parts/ directory."""
        if p.name == "parts" and p.is_dir():
            return not any(p.iterdir())
        return bool(TMP_GRID.match(p.name)) and p.is_file()

    def check(self, config_hash: str, force: bool) -> None:
        """Refuse an --out the store may not write into, or a different config's sweep without
        ``force`` (writes nothing)."""
        self._check_location()
        old = self.read_manifest()
        for p in (self.parts, *(self.dir / f"{n}.csv" for n in GRID_TABLES)):
            if p.exists() and p.is_dir() != (p == self.parts):
                what = "file" if p == self.parts else "directory"
                raise ConfigError(f"out: {p} is a {what}; muonlab writes its own {p.name} there")
        if old is None and self.dir.is_dir():
            foreign = sorted(p.name for p in self.dir.iterdir() if not self._own_leftover(p))
            if foreign:
                raise ConfigError(
                    f"out: {self.dir} is not empty and holds no muonlab manifest.json (it holds {foreign[0]!r}"
                    f"{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}); "
                    "muonlab writes only into a new or empty directory or its own sweep directory"
                )
        if old is not None and old.get("config_hash") != config_hash and not force:
            raise ConfigError(
                f"out: {self.dir} holds a sweep of a different config (hash {old.get('config_hash')}); "
                "use another --out directory, or --force to discard it"
            )

    def begin(self, config_hash: str, force: bool) -> None:
        """Open the directory for this config; ``force`` discards a different config's results
        (the lab's own files only). Temp files left by a killed writer are removed."""
        self.check(config_hash, force)
        old = self.read_manifest()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"out: cannot create {self.dir} ({e.strerror or type(e).__name__})") from None
        if old is not None and old.get("config_hash") != config_hash:
            self.discard(old)
        self.clean_temps()

    def own_files(self, manifest: dict | None) -> list[Path]:
        """The lab's files in the sweep directory: its grids and the manifest's ``outputs``
        (the analysis' files); for an older manifest, the analysis' fixed names."""
        listed = (manifest or {}).get("outputs")
        names = set(listed) if isinstance(listed, list) else set(ANALYSIS_FILES)
        names = {n for n in names if isinstance(n, str) and n == Path(n).name and not n.startswith(".")}
        out = []
        for p in self.dir.iterdir() if self.dir.is_dir() else ():
            if p.is_file() and p.name != "manifest.json" and (OWN_GRID.match(p.name) or p.name in names):
                out.append(p)
        return sorted(out)

    def discard(self, manifest: dict | None) -> None:
        """Delete a sweep's results: the lab's part files, grids and analysis outputs; any other
        file stays."""
        for p in self.own_files(manifest):
            p.unlink(missing_ok=True)
        if self.parts.is_dir():
            for p in self.parts.iterdir():
                if p.is_file() and (OWN_PART.match(p.name) or TMP_PART.match(p.name)):
                    p.unlink(missing_ok=True)
            if not any(self.parts.iterdir()):
                self.parts.rmdir()
        self._verified.clear()

    def clean_temps(self) -> None:
        """Remove the temp files a killed writer left (in the directory and in parts/)."""
        for d, pattern in ((self.dir, TMP_GRID), (self.parts, TMP_PART)):
            for p in d.iterdir() if d.is_dir() else ():
                if pattern.match(p.name) and p.is_file():
                    p.unlink(missing_ok=True)

    # --- parts --------------------------------------------------------------------------------
    def _keys(self, suffix: str) -> set[str]:
        if not self.parts.exists():
            return set()
        return {p.name[: -len(suffix)] for p in self.parts.glob("*" + suffix)}

    def index_path(self, key: str) -> Path:
        return self.parts / f"{key}.done.json"

    def index(self, key: str) -> dict | None:
        """A job's index (None when it has none or it cannot be read)."""
        try:
            data = json.loads(self.index_path(key).read_bytes())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("parts"), dict) else None

    def damage(self, key: str) -> str | None:
        """Why the finished job ``key`` is damaged (None when its parts verify). A job without an
        index is not finished (its parts, if any, are those of a killed writer)."""
        idx = self.index(key)
        if idx is None:
            return f"{self.index_path(key).name} unreadable"
        if "runs" not in idx["parts"] or "curves" not in idx["parts"]:
            return f"{self.index_path(key).name} lists no runs or curves part"
        sig = []
        for name in sorted(idx["parts"]):
            path = self.parts / f"{key}.{name}.csv"
            try:
                st = path.stat()
                sig.append((name, st.st_size, st.st_mtime_ns))
            except OSError:
                return f"{path.name} missing"
        sig = tuple(sig)
        if self._verified.get(key) == sig:
            return None
        for name, rec in sorted(idx["parts"].items()):
            why = integrity.problem(self.parts / f"{key}.{name}.csv", rec)
            if why is not None:
                return f"{key}.{name}.csv {why}"
        self._verified[key] = sig
        return None

    def finished(self) -> set[str]:
        """Keys of jobs whose index exists (done or damaged)."""
        return self._keys(".done.json")

    def done(self) -> set[str]:
        """Keys of finished jobs whose parts verify against their index."""
        return {k for k in self.finished() if self.damage(k) is None}

    def damaged(self) -> dict[str, str]:
        """Finished jobs whose parts do not verify: key -> what is wrong (they are run again)."""
        return {k: why for k in sorted(self.finished()) if (why := self.damage(k)) is not None}

    def failed(self) -> dict[str, dict]:
        """Failed jobs that have not finished since: key -> {"error", "detail", "runs"}."""
        done = self.finished()
        out = {}
        for key in sorted(self._keys(".failed.json") - done):
            try:
                out[key] = json.loads((self.parts / f"{key}.failed.json").read_text())
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                continue  # removed or replaced while we looked: the job is being retried
        return out

    def write_part(self, key: str, tables: dict[str, pd.DataFrame]) -> None:
        parts = {}
        for name in TABLES:
            if name in tables:
                data = csv_bytes(tables[name])
                atomic_write(self.parts / f"{key}.{name}.csv", data)
                parts[name] = integrity.record(data, len(tables[name]))
        index = {"key": key, "parts": parts, "session": self.session, "written": utc_now()}
        atomic_write(self.index_path(key), json.dumps(index, indent=1, sort_keys=True).encode())
        (self.parts / f"{key}.failed.json").unlink(missing_ok=True)

    def write_failure(self, key: str, runs: int, error: str, detail: str = "") -> None:
        info = {"key": key, "runs": runs, "error": error, "detail": detail}
        atomic_write(self.parts / f"{key}.failed.json", json.dumps(info, indent=2).encode())

    def record(self, outcome) -> None:
        """Write what a job returned (a :class:`lab.jobs.JobOutcome`): its parts, or its failure.
        The one path by which every executor stores a finished job."""
        if outcome.ok:
            self.write_part(outcome.key, outcome.tables)
        else:
            self.write_failure(outcome.key, outcome.runs, outcome.error, outcome.detail)

    def job_sessions(self, keys) -> dict[str, int | None]:
        """{key: the manifest session that computed it} for the finished jobs of ``keys``."""
        return {k: (self.index(k) or {}).get("session") for k in sorted(set(keys) & self.finished())}

    def read_parts(self, name: str, keys, optional: bool = False) -> pd.DataFrame:
        """The parts ``<key>.<name>.csv`` of ``keys`` concatenated; ``optional``: skip the jobs
        whose index lists no such part."""
        frames = []
        for k in sorted(keys):
            if optional and name not in (self.index(k) or {}).get("parts", {}):
                continue
            frames.append(pd.read_csv(self.parts / f"{k}.{name}.csv"))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # --- result grids -------------------------------------------------------------------------
    def write_table(self, name: str, df: pd.DataFrame) -> Path:
        """Write the grid ``<name>.csv`` and keep its integrity record in :attr:`grids`."""
        path = self.dir / f"{name}.csv"
        data = csv_bytes(df)
        atomic_write(path, data)
        self.grids[path.name] = integrity.record(data, len(df))
        return path

    def damaged_grids(self, manifest: dict) -> dict[str, str]:
        """Grids that do not match the manifest's records: file name -> what is wrong."""
        files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
        files = {n: rec for n, rec in files.items() if OWN_GRID.match(n) and n != "manifest.json"}
        return {n: why for n, rec in sorted(files.items()) if (why := integrity.problem(self.dir / n, rec))}
