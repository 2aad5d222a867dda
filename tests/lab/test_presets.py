"""Presets ship as package data: ``muonlab presets`` and ``muonlab reproduce NAME`` work from any
directory, ``presets`` prints what ``run`` takes (a path) and what ``reproduce`` takes (the claim
names), and pyproject.toml ships every preset and every package."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import lab.api
from lab.claims import claim_paths

ROOT = Path(__file__).resolve().parents[2]


def muonlab(cwd: Path, *argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *argv], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_presets_from_another_directory_print_claim_names_and_paths(tmp_path):
    res = muonlab(tmp_path, "presets")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    claims_at = lines.index("claim presets: muonlab reproduce NAME")
    assert lines[0] == "sweep presets: muonlab run PATH"
    sweeps, claims = lines[1:claims_at], lines[claims_at + 1 :]
    names = [line.split()[0] for line in claims]
    assert set(names) == set(claim_paths(ROOT / "configs" / "claims")) and len(names) >= 9
    paths = [Path(line.split()[0]) for line in sweeps]
    assert all(p.is_absolute() and p.exists() for p in paths)  # what `run` takes, from this cwd
    assert ROOT / "configs" / "demo.toml" in paths


def test_reproduce_resolves_claim_names_from_another_directory(tmp_path):
    res = muonlab(tmp_path, "reproduce", "no_such_claim")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "assoc_memory" in res.stderr and "(no presets)" not in res.stderr
    assert not (tmp_path / "results").exists()


def test_installed_presets_are_preferred(tmp_path, monkeypatch):
    """An installed package has lab/presets (package data): it is where presets are read."""
    (tmp_path / "claims").mkdir()
    (tmp_path / "mine.toml").write_text('description = "installed"\n')
    monkeypatch.setattr(lab.api, "PRESETS", tmp_path)
    assert lab.api.preset_dirs() == [tmp_path, tmp_path / "claims"]
    assert [(p.name, d) for p, d in lab.api.presets()] == [("mine.toml", "installed")]


def test_pyproject_ships_every_preset_and_every_package():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs, data, packages = cfg["package-dir"], cfg["package-data"], set(cfg["packages"])
    assert dirs == {"lab.presets": "configs", "lab.presets.claims": "configs/claims"}
    for pkg, src in dirs.items():
        assert pkg in packages and data[pkg] == ["*.toml"]
        assert list((ROOT / src).glob("*.toml"))
        assert not [p for p in (ROOT / src).iterdir() if p.is_file() and p.suffix != ".toml"]
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("lab", "problems", "runners", "analysis")
        for p in (ROOT / top).rglob("*.py")
    }
    assert found <= packages, found - packages  # a subpackage left out is missing from a wheel
