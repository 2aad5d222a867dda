"""Bad input through the CLI: exit code 2, one line naming the field, no traceback, nothing written."""

import subprocess
import sys
import textwrap

import pytest

GOOD = """
steps = 10
seeds = [0]
[problem]
kind = "power_law_lsq"
[problem.grid]
alpha = [0.0, 1.0]
[[optimizers]]
name = "gd"
lr = [0.1, 1.0]
"""

CASES = {
    "unknown optimizer": (GOOD.replace('name = "gd"', 'name = "adamw"'), "optimizers.0.name", "gd"),
    "negative steps": (GOOD.replace("steps = 10", "steps = -3"), "steps", "greater than 0"),
    "empty grid": (GOOD.replace("lr = [0.1, 1.0]", "lr = []"), "optimizers.0.lr", "empty"),
    "unknown field": (GOOD + "\nfoo = 1\n", "foo", "unknown field"),
    "unknown problem": (GOOD.replace('kind = "power_law_lsq"', 'kind = "nope"'), "problem.kind", "power_law_lsq"),
    "unknown problem parameter": (GOOD.replace("alpha = [0.0, 1.0]", "gamma = [1.0]"), "problem.grid.gamma", "alpha"),
    "out of range": (GOOD.replace("alpha = [0.0, 1.0]", "alpha = [-1.0]"), "problem.grid.alpha", ">= 0"),
    "bad toml": ("steps = = 3", "config", "TOML"),
}


def run_cli(tmp_path, text):
    cfg = tmp_path / "c.toml"
    cfg.write_text(textwrap.dedent(text))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", "run", str(cfg), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, out


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_exits_2_with_one_line(tmp_path, case):
    text, field, allowed = CASES[case]
    proc, out = run_cli(tmp_path, text)
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert field in lines[0] and allowed in lines[0], lines[0]
    assert not out.exists()


def test_missing_config_file(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", "run", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "no such file" in proc.stderr and "Traceback" not in proc.stderr
