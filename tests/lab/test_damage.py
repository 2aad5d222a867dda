"""Damaged result directories: every kind of damage (truncate, delete, garble) to every part
(runs, curves, spectra) and to every assembled grid is seen by ``status`` or refused by
``report`` in one line naming the file, and a resume gives the grids of an undamaged run."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

import analysis.figures
from lab.api import run_sweep, sweep_status
from lab.cli import main
from lab.config import parse_config

sys.path.insert(0, str(Path(__file__).parent))
from sweep_helpers import MANY_JOBS, assert_every_run_once, assert_same_grids, config  # noqa: E402

# six one-run jobs of 60 steps (the memory budget puts every run in its own job)
CFG = config(MANY_JOBS, steps=60, optimizers=[{"name": "gd", "lr": [0.1, 0.5]}, {"name": "muon", "lr": [0.03]}])
CFG["problem"] = {**CFG["problem"], "grid": {"alpha": [0.0], "beta": [0.5]}}


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 3])  # cut inside a line


def delete(path: Path) -> None:
    path.unlink()


def garble(path: Path) -> None:
    """Same size, still a well-formed CSV: one digit of the last data line changed."""
    data = bytearray(path.read_bytes())
    start = data.rindex(b"\n", 0, len(data) - 1) + 1
    i = next(i for i in range(len(data) - 2, start, -1) if chr(data[i]).isdigit())
    data[i] = ord("7") if data[i] != ord("7") else ord("3")
    path.write_bytes(bytes(data))


DAMAGE = {"truncate": truncate, "delete": delete, "garble": garble}


def _no_drawing(an) -> None:
    """The grids compared here are tables; drawing would cost seconds per resume."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An undamaged sweep of CFG (read-only; each test damages a copy)."""
    out = tmp_path_factory.mktemp("undamaged")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(analysis.figures, "draw_standard", _no_drawing)
        res = run_sweep(parse_config(CFG), out_dir=out, progress=False)
    assert res["complete"] and res["n_jobs"] == 6
    return out, res


@pytest.fixture
def no_figures(monkeypatch):
    monkeypatch.setattr(analysis.figures, "draw_standard", _no_drawing)


@pytest.fixture
def out(tmp_path, reference) -> Path:
    """A copy of the undamaged sweep, to damage."""
    shutil.copytree(reference[0], tmp_path / "out")
    return tmp_path / "out"


def job_keys(out: Path) -> list[str]:
    """The keys of the done jobs, sorted."""
    return sorted(p.name[: -len(".done.json")] for p in (out / "parts").glob("*.done.json"))


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("muonlab: error:"), err
    return lines[0]


@pytest.mark.parametrize("table", ["runs", "curves", "spectra"])
@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_part_is_reported_and_recomputed(out, reference, no_figures, capsys, table, kind):
    ref_dir, ref = reference
    key = job_keys(out)[3]
    DAMAGE[kind](out / "parts" / f"{key}.{table}.csv")

    st = sweep_status(out)
    assert st["jobs"]["damaged"] == 1 and list(st["damaged"]) == [key]
    assert st["jobs"]["done"] == ref["n_jobs"] - 1 and st["runs"]["damaged"] == 1
    assert main(["status", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "DAMAGED" in shown and f"damaged {key}: {key}.{table}.csv" in shown

    again = run_sweep(parse_config(CFG), out_dir=out, progress=False)
    assert again["complete"] and again["jobs_run_now"] == 1  # the damaged job only
    assert_every_run_once(out, ref["n_runs"])
    assert_same_grids(ref_dir, out)
    spectra = (out / "spectra.csv").read_text()
    assert spectra == (ref_dir / "spectra.csv").read_text()
    assert sweep_status(out)["jobs"]["damaged"] == 0


def test_job_without_index_is_pending_not_done(out, reference, no_figures):
    """A kill between the parts and the index: the job is not done (its parts are not trusted)."""
    ref_dir, _ = reference
    key = job_keys(out)[0]
    (out / "parts" / f"{key}.done.json").unlink()
    truncate(out / "parts" / f"{key}.runs.csv")
    st = sweep_status(out)
    assert st["jobs"]["pending"] == 1 and st["jobs"]["damaged"] == 0
    assert run_sweep(parse_config(CFG), out_dir=out, progress=False)["jobs_run_now"] == 1
    assert_same_grids(ref_dir, out)


@pytest.mark.parametrize("grid", ["runs", "curves", "spectra"])
@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_grid_is_refused_by_report_and_rebuilt_by_resume(out, reference, no_figures, capsys, grid, kind):
    ref_dir, ref = reference
    path = out / f"{grid}.csv"
    DAMAGE[kind](path)

    if not (kind == "delete" and grid == "spectra"):  # spectra.csv is optional: a sweep may have none
        assert main(["report", str(out)]) == 2
        line = one_line(capsys.readouterr().err)
        assert f"{grid}.csv" in line
        if kind != "delete":
            assert str(path) in line and "damaged" in line
    assert list(sweep_status(out)["damaged_grids"]) == [f"{grid}.csv"]

    again = run_sweep(parse_config(CFG), out_dir=out, progress=False)
    assert again["complete"] and again["jobs_run_now"] == 0  # the parts are intact: only reassembled
    assert_every_run_once(out, ref["n_runs"])
    assert_same_grids(ref_dir, out)
    assert (out / "spectra.csv").read_bytes() == (ref_dir / "spectra.csv").read_bytes()


def test_truncated_grid_without_records_is_refused(out, capsys):
    """A directory whose manifest predates integrity records: a cut-off last line is still seen."""
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["files"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    truncate(out / "curves.csv")
    assert main(["report", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert str(out / "curves.csv") in line and "truncated" in line


def test_manifest_records_every_grid(reference):
    """The records are those of the files as written: rows and bytes agree with the files."""
    ref_dir, ref = reference
    files = json.loads((ref_dir / "manifest.json").read_text())["files"]
    assert {"runs.csv", "curves.csv", "spectra.csv"} <= set(files)
    for name, rec in files.items():
        data = (ref_dir / name).read_bytes()
        assert rec["bytes"] == len(data) and rec["rows"] == data.count(b"\n") - 1
    assert files["runs.csv"]["rows"] == ref["n_runs"]
    for idx in (ref_dir / "parts").glob("*.done.json"):
        parts = json.loads(idx.read_text())["parts"]
        assert set(parts) == {"runs", "curves", "spectra"}
        for name, rec in parts.items():
            data = (ref_dir / "parts" / f"{idx.name[: -len('.done.json')]}.{name}.csv").read_bytes()
            assert rec["bytes"] == len(data) and rec["rows"] == data.count(b"\n") - 1
