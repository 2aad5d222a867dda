"""lab.perf_env decisions and the entry point's ordering; lab.bench on tiny inputs (no timings
are asserted)."""

import json
import subprocess
import sys

import pytest

import runners
from lab import bench, perf_env

AMD = {"vendor": "AuthenticAMD", "model": "AMD EPYC", "flags": {"avx2", "avx512f", "avx512dq", "avx512bw", "avx512vl"}}


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(perf_env, "_SETTINGS", None)
    monkeypatch.setattr(perf_env, "_malloc", lambda env: {"source": "stub"})
    return monkeypatch


def test_coretype_set_only_when_unset_on_amd_avx512_before_numpy(fresh):
    fresh.setattr(perf_env, "cpu", lambda: AMD)
    fresh.delitem(sys.modules, "numpy")  # as if NumPy were not loaded yet (restored after the test)
    env = {}
    got = perf_env.configure(env)
    assert env["OPENBLAS_CORETYPE"] == "SkylakeX" and got["openblas_coretype"]["value"] == "SkylakeX"
    assert perf_env.configure() is got  # once per process
    assert {k: v for k, v in perf_env.settings().items() if k not in ("cpu", "kernels")} == got


def test_settings_record_the_cpu_and_the_kernel_levers():
    import numpy as np  # noqa: F401  (the kernel levers are reported once NumPy is loaded)

    from runners import orth

    got = perf_env.settings()
    assert set(got["cpu"]) >= {"vendor", "avx2", "avx512", "cores"} and got["cpu"]["cores"] >= 1
    labels = {"syrk": "syrk", "copy": "gemm on a scaled transposed copy"}
    assert got["kernels"]["gram_product"] == labels[orth.gram_product()]
    from problems import backend

    assert got["kernels"]["linalg_split_min_work"] == backend.SPLIT_LINALG_MIN


@pytest.mark.parametrize(
    "case,env,cpu",
    [
        ("user value kept", {"OPENBLAS_CORETYPE": "Haswell"}, AMD),
        ("intel", {}, {**AMD, "vendor": "GenuineIntel"}),
        ("no avx512", {}, {**AMD, "flags": {"avx2"}}),
        ("numpy loaded", {}, AMD),
    ],
)
def test_coretype_left_alone(fresh, case, env, cpu):
    fresh.setattr(perf_env, "cpu", lambda: cpu)
    before = dict(env)
    got = perf_env.configure(env)["openblas_coretype"]
    assert env == before and got["value"] == before.get("OPENBLAS_CORETYPE")


def test_switch_off(fresh):
    env = {perf_env.SWITCH: "0"}
    got = perf_env.configure(env)
    assert got["enabled"] is False and "malloc" not in got and env == {perf_env.SWITCH: "0"}


def test_cli_sets_coretype_before_numpy_loads():
    """In a fresh process without the variable, importing the CLI decides before NumPy loads:
    on an AMD CPU with AVX-512 OpenBLAS then runs its SkylakeX kernels."""
    code = (
        "import os, json, lab.cli; from lab import perf_env; from threadpoolctl import threadpool_info; "
        "print(json.dumps([perf_env.settings(), [i.get('architecture') for i in threadpool_info()]]))"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENBLAS_CORETYPE"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    settings, archs = json.loads(out.stdout.strip().splitlines()[-1])
    info = perf_env.cpu()
    if info["vendor"] == "AuthenticAMD" and perf_env._AVX512 <= info["flags"]:
        assert settings["openblas_coretype"]["value"] == "SkylakeX" and "SkylakeX" in archs
    else:
        assert settings["openblas_coretype"]["value"] is None


def test_step_flops_formula():
    f, text = bench.step_flops(runners.make("muon"), 64, 256, 256, 1.0)
    assert f == 4 * 64 * 256 * 256 + 5 * (4 * 64**2 * 256 + 2 * 64**3) and "5(4p^2q + 2p^3)" in text
    assert bench.step_flops(runners.make("gd"), 8, 4, 16, 2.0)[0] == 2 * 4 * 8 * 4 * 16
    assert bench.step_flops(runners.make("muon", orth="svd"), 8, 4, 16, 1.0)[0] is None
    assert set(bench.default_optimizers()) >= {"muon", "gd", "signsgd"}


def test_bench_pieces_run_and_render(monkeypatch):
    monkeypatch.setitem(bench.CASES, "tiny", (6, 10, 12, 4))
    rows = [
        dict(bench.workload("tiny", name, repeats=1, steps=3, log_points=2), fraction_of_peak=0.5)
        for name in ("muon", "gd")
    ]
    assert all(r["problem_steps_per_s"] > 0 and r["gflops"] > 0 for r in rows)
    peak = bench.matmul_peak(repeats=1, seconds=1e-4)
    assert peak["peak"] == max(r["gflops"] for r in peak["rows"]) > 0
    res = {
        "machine": bench.machine(),
        "backend": "numpy",
        "repeats": 1,
        "log_points": 2,
        "matmul": peak,
        "workload": rows,
        "demo": {
            "config": "demo.toml",
            "runs": 1,
            "steps": 1,
            "jobs": 1,
            "wall_s": 1.0,
            "run_loop_s": 0.9,
            "overhead_share": 0.1,
            "run_steps_per_s": 1.0,
        },
        "code_levers": [{"lever": "lanes", "case": "tiny", "off": 1.0, "on": 2.0}],
        "env_levers": {"a": {"peak_512": 1.0, "small": 2.0}},
    }
    md = bench.markdown(res)
    assert (
        "| **peak** |" in md and "| tiny 6x10, N = 12 | muon | 4 |" in md and "overhead (everything else) 10.0%" in md
    )
    assert "lanes" in md and bench.text(res).startswith("matmul peak")
