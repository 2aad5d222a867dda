"""The README's Python block runs as written: its array part verbatim here (the two sweep lines
are the demo itself, which `make demo` runs; they are checked to name the public API)."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_block_runs():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    lines = block.splitlines()
    sweep = [ln for ln in lines if "run_sweep" in ln or "analysis.report" in ln]
    assert len(sweep) == 2
    env: dict = {}
    exec("\n".join(ln for ln in lines if ln not in sweep), env)  # noqa: S102
    res = env["res"]
    assert res.curves["gap"].shape[1] == 64 and np.isfinite(res.curves["gap"]).all()
    import analysis
    import lab

    assert callable(lab.run_sweep) and callable(analysis.report)


def test_cli_version_matches_the_installed_package():
    import subprocess
    import sys
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "lab.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"muonlab {version('muonlab')}"
