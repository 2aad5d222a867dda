"""Nothing the user wrote is overwritten or deleted: --out is refused for a non-empty directory
that is not a muonlab sweep (also with --force); --force discards only the lab's own files;
temp files of a writer killed while the final grids were written are swept up on resume; result
files get the permissions of ordinary files (0666 less the umask)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

import analysis.figures
from lab.api import run_sweep
from lab.cli import main
from lab.config import parse_config
from lab.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from sweep_helpers import MANY_JOBS, config, toml  # noqa: E402

TINY = config(MANY_JOBS, steps=8, seeds=[0], optimizers=[{"name": "gd", "lr": [0.1]}, {"name": "muon", "lr": [0.03]}])
TINY["problem"] = {**TINY["problem"], "grid": {"alpha": [0.0, 1.0], "beta": [0.5]}}


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    monkeypatch.setattr(analysis.figures, "draw_standard", lambda an: None)


def snapshot(d: Path) -> dict:
    return {p.relative_to(d): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(d.rglob("*")) if p.is_file()}


def cli(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def write_cfg(tmp_path: Path, cfg=TINY) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(toml(cfg))
    return p


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(
    "files",
    [
        {"runs.csv": "run_id,my_own_results\n1,2\n"},  # the user's own runs.csv
        {"manifest.json": '{"name": "my project"}'},  # a manifest.json that is not muonlab's
        {"manifest.json": "[1, 2]"},
        {"notes.txt": "mine", "parts/keep.csv": "x"},
    ],
    ids=["own-runs-csv", "foreign-manifest", "manifest-list", "notes"],
)
def test_non_sweep_directory_is_refused(tmp_path, capsys, files, force):
    out = tmp_path / "out"
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = snapshot(out)
    code, err = cli(capsys, "run", str(write_cfg(tmp_path)), "--out", str(out), "--quiet", *(["--force"] * force))
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("muonlab: error: out:")
    assert str(out) in err
    assert snapshot(out) == before


def test_force_discards_only_the_labs_own_files(tmp_path):
    out = tmp_path / "out"
    run_sweep(parse_config(TINY), out_dir=out, progress=False)
    lab_files = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    mine = {"notes.txt": "mine", "parts/README": "mine too", "figure_i_drew.png": "png", ".runs.csv.swp": "vim"}
    for name, text in mine.items():
        (out / name).write_text(text)
    other = config(TINY, steps=9)  # a different config: --force starts over
    res = run_sweep(parse_config(other), out_dir=out, progress=False, force=True)
    assert res["jobs_run_now"] == res["n_jobs"]
    for name, text in mine.items():
        assert (out / name).read_text() == text, name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["steps"] == 9 and len(manifest["sessions"]) == 1
    old_parts = {p for p in lab_files if p.parts[0] == "parts"}
    assert not old_parts & {p.relative_to(out) for p in (out / "parts").iterdir()}  # discarded, then rewritten anew
    assert {"runs.csv", "summary.csv", "analysis.json"} <= set(manifest["outputs"])


def test_empty_directory_and_start_up_leftovers_are_accepted(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_sweep(parse_config(TINY), out_dir=empty, progress=False)["complete"]
    killed = tmp_path / "killed"  # a start-up killed while the first manifest was written
    (killed / "parts").mkdir(parents=True)
    (killed / ".manifest.json.0a1b2c3d.tmp").write_text('{"config')
    assert run_sweep(parse_config(TINY), out_dir=killed, progress=False)["complete"]
    assert not list(killed.glob(".*.tmp"))


def test_temp_files_of_the_final_grids_are_cleaned_on_resume(tmp_path):
    out = tmp_path / "out"
    run_sweep(parse_config(TINY), out_dir=out, progress=False)
    # a kill while runs.csv / the manifest / a part were being written leaves these
    left = [".runs.csv.1f2e3d4c.tmp", ".curves.csv.a1b2c3d4.tmp", ".spectra.csv.00000000.tmp", ".manifest.json.x1.tmp"]
    for name in left:
        (out / name).write_text("run_id,st")
    (out / "parts" / ".0-gd-abc.curves.csv.deadbeef.tmp").write_text("run_")
    (out / ".my.tmp").write_text("the user's")  # not a name the lab writes: kept
    assert run_sweep(parse_config(TINY), out_dir=out, progress=False)["jobs_run_now"] == 0
    assert sorted(p.name for p in out.glob(".*")) == [".my.tmp"]
    assert not list((out / "parts").glob(".*"))


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_result_files_get_ordinary_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        out = tmp_path / "out"
        run_sweep(parse_config(TINY), out_dir=out, progress=False)
    finally:
        os.umask(old)
    written = [out / "manifest.json", out / "runs.csv", out / "curves.csv", *sorted((out / "parts").iterdir())]
    for p in written:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p.name


def test_store_writes_only_into_its_own_directory(tmp_path):
    """The store's precise list of its own files: what a sweep writes is recognized, nothing else."""
    out = tmp_path / "out"
    run_sweep(parse_config(TINY), out_dir=out, progress=False)
    store = Store(out)
    own = {p.name for p in store.own_files(store.read_manifest())}
    written = {p.name for p in out.iterdir() if p.is_file()} - {"manifest.json"}
    assert own == written
    (out / "mine.csv").write_text("a\n")
    assert "mine.csv" not in {p.name for p in store.own_files(store.read_manifest())}
