"""The analysis package's contracts with the rest of the house: every theory table is keyed by
exact registry names (no optimizer is recognized by a substring of its name), every per-mode
theory names a spectrum its problem writes, lab.config imports the options without matplotlib,
and no analysis module exceeds 500 lines."""

import subprocess
import sys
from pathlib import Path

import numpy as np

import problems
import runners
from analysis import theory
from problems.backend import get_backend

ROOT = Path(__file__).resolve().parents[2]


def test_every_theory_key_is_a_registered_optimizer():
    keys = {**{k: "RATE_METHODS" for k in theory.RATE_METHODS}, **{k: "SHEN_GD_KINDS" for k in theory.SHEN_GD_KINDS}}
    for problem, th in theory.MODE_THEORIES.items():
        keys.update({k: f"MODE_THEORIES[{problem}]" for k in th.exponents})
    missing = {k: where for k, where in keys.items() if k not in runners.REGISTRY}
    assert not missing, missing
    families = {runners.get(n).FAMILY for n in runners.REGISTRY}
    assert set(theory.SHEN_FOCUS_FAMILIES) <= families


def test_every_mode_theory_names_a_spectrum_its_problem_writes():
    bk = get_backend("numpy", "float64")
    for problem, th in theory.MODE_THEORIES.items():
        assert problem in problems.REGISTRY
        pb = problems.make(problem, runs=2, seed=np.array([0, 1]), backend=bk)
        spec = pb.spectra()
        assert th.spectrum in spec, (problem, sorted(spec))
        w = spec[th.spectrum]
        assert w.shape[0] == 2 and np.all(np.isfinite(w)) and np.all(w > 0)


def test_lab_config_imports_the_options_without_matplotlib():
    code = (
        "import sys, lab.config, analysis.options; "
        "assert lab.config.AnalysisConfig is analysis.options.AnalysisOptions; "
        "assert lab.config.CRITERIA == tuple(analysis.options.CRITERIA); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'seaborn')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_no_analysis_module_over_500_lines():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in (ROOT / "analysis").rglob("*.py")}
    assert max(sizes.values()) <= 500, {k: v for k, v in sizes.items() if v > 500}
