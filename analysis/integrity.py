"""The integrity record of a file the lab writes: its byte count, row count and SHA-256
(docs/results.md, "Integrity records"). ``lab.store`` records one for every part and every
assembled grid; :class:`analysis.results.Results` checks the grids against the manifest's
records before it reads them, so a truncated or garbled table is refused, never analysed.

Lives in ``analysis`` (the lower layer) because both sides use it: the lab writes records,
the analysis verifies them, and ``analysis`` never imports ``lab``."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def record(data: bytes, rows: int) -> dict:
    """The record of a file whose bytes are ``data`` and which holds ``rows`` table rows."""
    return {"rows": int(rows), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def sha256(path: "str | Path") -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def problem(path: "str | Path", rec: dict) -> str | None:
    """Why ``path`` does not match its record ``rec`` (``None`` when it does): missing, a size
    that differs (truncated or grown), or the same size with other bytes (garbled)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror or type(e).__name__})"
    if not path.is_file():
        return "not a file"
    if not isinstance(rec, dict) or not {"bytes", "sha256"} <= set(rec):
        return "its integrity record is unreadable"
    if size != rec["bytes"]:
        return f"{size} bytes where {rec['bytes']} were written ({'truncated' if size < rec['bytes'] else 'grown'})"
    try:
        digest = sha256(path)
    except OSError as e:
        return f"unreadable ({e.strerror or type(e).__name__})"
    if digest != rec["sha256"]:
        return "checksum differs from the one recorded when it was written (garbled)"
    return None
