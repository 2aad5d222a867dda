"""Imports run one way (lab -> analysis; lab -> runners -> problems -> problems.backend):
``import problems, runners`` in a fresh interpreter loads no module of pandas, matplotlib, lab
or analysis (nor seaborn, pydantic or tqdm, which only the lab uses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("pandas", "matplotlib", "lab", "analysis", "seaborn", "pydantic", "tqdm")


def loaded_after(statement: str) -> set[str]:
    """Top-level packages among FORBIDDEN that a fresh interpreter holds after ``statement``."""
    code = (
        f"import json, sys; {statement}; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(FORBIDDEN)!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_problems_and_runners_load_nothing_of_the_lab_or_analysis():
    assert loaded_after("import problems, runners; runners.make('muon'); problems.make('quadratic', m=2, n=2)") == set()


def test_the_probe_sees_what_the_lab_loads():
    # the same probe after importing the lab's sweep driver finds its dependencies (it can fail)
    assert {"lab", "pandas"} <= loaded_after("import lab.api")
