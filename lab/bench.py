"""``muonlab bench``: the machine's float32 matmul peak and the lab's throughput on workload W,
measured in the same run, as fractions of that peak (docs/benchmarks.md).

Workload W: B independent least-squares problems (``sample_lsq``), X (m x n), full-batch gradient
G = (X A - Y) A^T / N from data A (n x N), T = 100 optimizer steps, float32, through
``runners.run`` (metrics at ``log_points`` log-spaced steps). FLOPs per problem-step (written out
in the output): 4 m n N per oracle call, plus for Newton-Schulz with k steps k (4 p^2 q + 2 p^3),
p = min(m, n), q = max(m, n) -- the plain iteration's count, also where a kernel does fewer.
Every figure is the median of ``repeats`` timed repetitions after one warm-up.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import problems
import runners
from runners import loop, orth

from . import peers as _peers
from . import perf_env
from problems.backend import BackendError, get_backend, limit_blas_threads

CASES = {  # name: (m, n, N, B)
    "small": (64, 64, 256, 64),
    "large": (256, 256, 256, 8),
    "tall": (256, 64, 256, 8),
    "wide": (64, 256, 256, 8),
}
STEPS = 100
LOG_POINTS = 5  # W logs its metrics at 5 log-spaced steps (runners.log_steps: steps 0, 1, 3, 10, 32, 100)
DEMO = Path(__file__).resolve().parents[1] / "configs" / "demo.toml"


def default_optimizers() -> list[str]:
    """Muon, GD, SignSGD and every registered two-point spectral method (FAMILY "spectral",
    ORACLE_CALLS 2: Muon-MVR2), chosen by the classes' declarations."""
    names = [n for n in ("muon", "gd", "signsgd") if n in runners.REGISTRY]
    two_point = (n for n, cls in runners.REGISTRY.items() if cls.FAMILY == "spectral" and cls.ORACLE_CALLS == 2)
    return names + sorted(two_point)


def _median_time(fn, repeats: int, sync) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# --- the matmul peak -------------------------------------------------------------------------


def _lanes_time(fn, B: int, lanes: int, repeats: int, sync) -> float:
    """Median seconds of ``fn(slice)`` run on ``lanes`` sub-batches of B in threads, one BLAS
    thread each, joined once at the end (as the run loop's lanes)."""
    bounds = np.linspace(0, B, lanes + 1).astype(int)
    parts = [slice(i, j) for i, j in zip(bounds[:-1], bounds[1:])]
    with limit_blas_threads(1), ThreadPoolExecutor(lanes) as pool:
        return _median_time(lambda: list(pool.map(fn, parts)), repeats, sync)


def matmul_peak(backend="numpy", repeats: int = 5, seconds: float = 0.1) -> dict:
    """float32 GFLOP/s of C = A B (medians): square sizes, and W's batched shapes, the latter
    also split over threads with one BLAS thread each (as the run loop's lanes do). ``peak`` is
    the best of them."""
    bk = get_backend(backend, "float32")
    xp = bk.xp
    square = (256, 512, 1024) if bk.on_host else (1024, 2048, 4096, 8192)
    shapes = [(1, n) for n in square] + [(64, 64), (8, 256)]
    rows = []
    lanes = bk.threads
    for B, n in shapes:
        a = bk.asarray(np.random.default_rng(0).standard_normal((B, n, n)))
        b, c = xp.asarray(a, copy=True), xp.empty_like(a)
        flops = 2.0 * B * n**3
        reps = max(1, int(seconds * (50e9 if bk.on_host else 2e13) / flops))
        shape = f"{B} x {n}x{n}" if B > 1 else f"{n}x{n}"
        t = _median_time(lambda: [xp.matmul(a, b, out=c) for _ in range(reps)], repeats, bk.sync)
        rows.append({"shape": shape, "how": "one call (BLAS threads)", "gflops": flops * reps / t / 1e9})
        if B > 1 and lanes > 1:

            def products(sl, a=a, b=b, c=c, reps=reps):
                for _ in range(reps):
                    xp.matmul(a[sl], b[sl], out=c[sl])

            t = _lanes_time(products, B, lanes, repeats, bk.sync)
            rows.append({"shape": shape, "how": f"{lanes} lanes x 1 BLAS thread", "gflops": flops * reps / t / 1e9})
    return {"rows": rows, "peak": max(r["gflops"] for r in rows)}


def _w_products(bk, case: str) -> list[tuple]:
    """The matmuls of one Muon step of W's ``case`` as (A, B, out) buffer triples: the gradient's
    two products, then for each of the 5 Newton-Schulz steps Z Z^T (on a contiguous Z^T, the
    layout that needs no transpose), G G and H Z, on the Gram side p <= q."""
    m, n, N, B = CASES[case]
    p, q = min(m, n), max(m, n)
    rng = np.random.default_rng(0)

    def buf(*shape):  # bounded values: every product reads the same inputs, nothing grows
        return bk.asarray(rng.standard_normal((B, *shape)) / np.sqrt(shape[-1]))

    x, a, r, atn, g = buf(m, n), buf(n, N), buf(m, N), buf(N, n), buf(m, n)
    z, zt, gram, h, z2 = buf(p, q), buf(q, p), buf(p, p), buf(p, p), buf(p, q)
    return [(x, a, r), (r, atn, g)] + [(z, zt, gram), (gram, gram, h), (h, z, z2)] * len(orth.KELLER)


def gemm_floor(case: str, backend="numpy", repeats: int = 5) -> dict:
    """Seconds of W's matmuls alone on ``case`` (:func:`_w_products`, T = STEPS steps, into
    preallocated buffers, nothing else): the better median of one call per product (library
    threads) and of lanes with one thread each, as the run loop splits its batch. No
    implementation of W with the same products on this library beats it; the side by side's
    bound for the lab and for every peer."""
    bk = get_backend(backend, "float32")
    mm = bk.module.matmul
    triples = _w_products(bk, case)

    def steps(sl):
        for _ in range(STEPS):
            for a, b, c in triples:
                mm(a[sl], b[sl], out=c[sl])

    t = _median_time(lambda: steps(slice(None)), repeats, bk.sync)
    B = CASES[case][3]
    lanes = min(bk.threads, B)
    if lanes > 1:
        t = min(t, _lanes_time(steps, B, lanes, repeats, bk.sync))
    return {"seconds": t, "lanes_tried": lanes}


# --- workload W ----------------------------------------------------------------------------


def step_flops(opt, m: int, n: int, N: int, calls: float) -> tuple[float | None, str]:
    """FLOPs per problem-step of ``opt`` on W and the formula, or (None, why) when unknown."""
    p, q = min(m, n), max(m, n)
    f, text = calls * 4.0 * m * n * N, f"{calls:g} x 4mnN"
    kernel = opt.hp.get("orth")
    if kernel is not None:
        # Newton-Schulz kernels (coefficient sets) have a FLOP count; by default len(coeffs) steps
        k = opt.hp.get("ns_steps")
        if not k and kernel in orth.COEFFICIENTS:
            k = len(orth.COEFFICIENTS.get(kernel).coeffs)
        if not k:
            return None, f"{text} + {kernel} (no FLOP count)"
        f += k * (4.0 * p * p * q + 2.0 * p**3)
        text += f" + {k}(4p^2q + 2p^3)"
    return f, text


def workload(
    case: str,
    name: str,
    backend="numpy",
    repeats: int = 5,
    log_points: int = LOG_POINTS,
    lanes=None,
    steps: int = STEPS,
) -> dict:
    """Throughput of optimizer ``name`` (registry defaults) on W's ``case``."""
    m, n, N, B = CASES[case]
    bk = get_backend(backend, "float32")
    P = problems.make("sample_lsq", runs=B, seed=np.arange(B), backend=bk, m=m, n=n, samples=N, alpha=1.0)
    opt = runners.make(name)
    res = {}

    def go():
        res["r"] = runners.run(P, opt, steps=steps, seed=np.arange(B), log_points=log_points, lanes=lanes)

    t = _median_time(go, repeats, bk.sync)
    flops, formula = step_flops(opt, m, n, N, res["r"].oracle_calls_per_step)
    out = {
        "case": case,
        "optimizer": name,
        "m": m,
        "n": n,
        "N": N,
        "B": B,
        "steps": steps,
        "seconds": t,
        "problem_steps_per_s": B * steps / t,
        "flops_per_step": flops,
        "formula": formula,
        "lanes": res["r"].extra.get("lanes", 1),
    }
    out["gflops"] = None if flops is None else flops * B * steps / t / 1e9
    return out


def demo(config=DEMO, backend=None) -> dict:
    """The demo sweep end to end into a temporary directory: wall time and the share outside
    runners.run (planning, the store, CSV, tuning, figures)."""
    from .api import run_sweep  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as out:
        before = dict(loop.TIMER)
        t = time.perf_counter()
        res = run_sweep(config, out_dir=out, backend=backend, progress=False)
        wall = time.perf_counter() - t
        inside = loop.TIMER["seconds"] - before["seconds"]
    return {
        "config": str(config),
        "runs": res["n_runs"],
        "steps": res["steps"],
        "jobs": res["n_jobs"],
        "wall_s": wall,
        "run_loop_s": inside,
        "overhead_share": 1 - inside / wall,
        "run_steps_per_s": res["n_runs"] * res["steps"] / wall,
    }


# --- levers: the same measurements with one setting changed --------------------------------

ENV_VARIANTS = {
    "Haswell kernels, glibc default": {"OPENBLAS_CORETYPE": "Haswell"},
    "SkylakeX kernels, glibc default": {"OPENBLAS_CORETYPE": "SkylakeX"},
    "SkylakeX kernels, malloc thresholds": {
        "OPENBLAS_CORETYPE": "SkylakeX",
        "MALLOC_MMAP_THRESHOLD_": str(perf_env.MMAP_THRESHOLD),
        "MALLOC_TRIM_THRESHOLD_": str(perf_env.TRIM_THRESHOLD),
    },
}


def _child(spec: dict) -> dict:
    """One measurement in this (freshly started) process, for :func:`env_levers`."""
    out = {"peak_512": matmul_peak(repeats=3)["rows"][1]["gflops"]}
    for case in spec["cases"]:
        out[case] = workload(case, "muon", repeats=spec["repeats"])["gflops"]
    return out


def env_levers(cases=("small", "large"), rounds: int = 5) -> dict:
    """Each environment variant in a fresh process (the settings act at process start),
    variants interleaved round by round; medians over rounds."""
    results = {k: [] for k in ENV_VARIANTS}
    spec = json.dumps({"cases": list(cases), "repeats": 1})
    for _ in range(rounds):
        for label, extra in ENV_VARIANTS.items():
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS_CORETYPE", "MALLOC_"))}
            env.update(extra, **{perf_env.SWITCH: "0"})
            done = subprocess.run(
                [sys.executable, "-m", "lab.bench", "--child", spec],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            results[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {label: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for label, rs in results.items()}


def code_levers(repeats: int = 5) -> list[dict]:
    """In-process levers, alternatives interleaved: lanes (1 vs one per BLAS thread) on small and
    large, the fused Gram path (off vs on) on tall and wide."""
    rows = []
    saved = orth.GRAM_FUSE_RATIO
    variants = [("lanes", c, {"lanes": 1}, {"lanes": None}, None) for c in ("small", "large")]
    variants += [("fused Gram path", c, {}, {}, (None, saved)) for c in ("tall", "wide")]
    try:
        for lever, case, kw_off, kw_on, fuse in variants:
            off, on = [], []
            for _ in range(repeats):
                if fuse:
                    orth.GRAM_FUSE_RATIO = fuse[0]
                off.append(workload(case, "muon", repeats=1, **kw_off)["gflops"])
                if fuse:
                    orth.GRAM_FUSE_RATIO = fuse[1]
                on.append(workload(case, "muon", repeats=1, **kw_on)["gflops"])
            rows.append({"lever": lever, "case": case, "off": statistics.median(off), "on": statistics.median(on)})
    finally:
        orth.GRAM_FUSE_RATIO = saved
    return rows


# --- peers: the same workload in other frameworks, interleaved with the lab ---------------

PEER_CASES = ("small", "large")
# the lab's rows of the side by side, name: (backend, log_points): W as defined (metrics at 5
# log-spaced steps) on NumPy and on the torch backend (where installed), and W on each with
# metrics at steps 0, 1 and T only (runners.log_steps(T, 0)), closer to the peers, which compute
# none; the difference is the cost of the logged metrics. The ratio column takes the faster of
# the W rows (LAB_W).
LAB_ROWS = {
    "lab": ("numpy", LOG_POINTS),
    "lab_torch": ("torch", LOG_POINTS),
    "lab_bare": ("numpy", 0),
    "lab_torch_bare": ("torch", 0),
}
LAB_W = ("lab", "lab_torch")
# W's matmuls alone (gemm_floor) on each backend: the bound on the lab's and the peers' rows
FLOOR_ROWS = {"floor": "numpy", "floor_torch": "torch"}


def _contenders(repeats: int) -> dict:
    """name -> fn(case) -> seconds, for every row of the side by side: the lab's rows
    (LAB_ROWS), the peers (lab.peers.RUNNERS) and W's matmuls alone (FLOOR_ROWS). A row whose
    backend or framework is missing raises BackendError or lab.peers.PeerMissing."""
    out = {
        name: lambda case, b=backend, lp=log_points: workload(case, "muon", b, repeats, lp)["seconds"]
        for name, (backend, log_points) in LAB_ROWS.items()
    }
    out.update({name: lambda case, k=name: _peers.time_peer(k, _case(case), STEPS, repeats) for name in _peers.RUNNERS})
    out.update({name: lambda case, b=b: gemm_floor(case, b, repeats)["seconds"] for name, b in FLOOR_ROWS.items()})
    return out


def peer_comparison(cases=PEER_CASES, passes: int = 3, repeats: int = 5, progress=print) -> dict:
    """Lab (``runners.run``, Muon), each installed peer (lab.peers) and W's matmuls alone
    (:func:`gemm_floor`) on W's ``cases``, interleaved pass by pass (in that order, per case);
    each figure is the median over passes of the per-pass median of ``repeats`` runs. Missing
    rows are listed with the reason."""
    contenders = _contenders(repeats)
    names = list(contenders)
    secs = {(c, k): [] for c in cases for k in names}
    missing = {}
    for i in range(passes):
        for case in cases:
            progress(f"peers, pass {i + 1}/{passes}: {case} ...")
            for name, timed in contenders.items():
                if name in missing:
                    continue
                try:
                    secs[(case, name)].append(timed(case))
                except (BackendError, _peers.PeerMissing) as exc:
                    missing[name] = str(exc)
                    progress(f"row {name} skipped: {exc}")
    rows = []
    for case in cases:
        m, n, N, B = CASES[case]
        flops, formula = step_flops(runners.make("muon"), m, n, N, 1.0)
        row = {"case": case, "m": m, "n": n, "N": N, "B": B, "formula": formula, "flops_per_step": flops}
        for name in names:
            ts = secs[(case, name)]
            row[name] = (
                None
                if not ts
                else {"seconds": statistics.median(ts), "gflops": flops * B * STEPS / statistics.median(ts) / 1e9}
            )
        rows.append(row)
    return {
        "names": names,
        "rows": rows,
        "missing": missing,
        "passes": passes,
        "repeats": repeats,
        "versions": _peers.versions(),
    }


def _case(case: str) -> dict:
    m, n, N, B = CASES[case]
    return {"m": m, "n": n, "N": N, "B": B}


# --- the whole benchmark -------------------------------------------------------------------


def machine(backend="numpy") -> dict:
    from .provenance import blas  # noqa: PLC0415

    info = perf_env.cpu()
    out = {
        "cpu": info["model"],
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": [{k: b.get(k) for k in ("internal_api", "version", "architecture", "num_threads")} for b in blas()],
        "perf_env": perf_env.settings(),
    }
    if backend == "cupy":
        cupy = get_backend("cupy").module
        props = cupy.cuda.runtime.getDeviceProperties(0)
        out["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        out["cupy"] = cupy.__version__
    if backend != "numpy":
        out["backend_info"] = get_backend(backend).info
    return out


def bench(
    backend="numpy",
    cases=tuple(CASES),
    optimizers=None,
    repeats: int = 5,
    log_points: int = LOG_POINTS,
    with_demo: bool = True,
    levers: bool = False,
    peers: bool = False,
    peer_passes: int = 3,
    progress=print,
) -> dict:
    optimizers = list(optimizers or default_optimizers())
    for c in cases:
        if c not in CASES:
            raise problems.ParamError(f"cases: unknown {c!r}; allowed: {', '.join(CASES)}")
    if peers and int(peer_passes) < 1:
        raise problems.ParamError(f"passes: got {peer_passes!r}; allowed: an integer >= 1")
    for name in optimizers:
        runners.get(name)  # unknown names: a one-line error listing the registered ones
    out = {"machine": machine(backend), "backend": backend, "repeats": repeats, "log_points": log_points}
    progress("measuring the matmul peak ...")
    first = matmul_peak(backend, repeats)
    out["workload"] = []
    for name in optimizers:
        for case in cases:
            progress(f"workload W: {name} on {case} ...")
            row = workload(case, name, backend, repeats, log_points)
            out["workload"].append(row)
    if peers:
        out["peers"] = peer_comparison(
            [c for c in PEER_CASES if c in cases] or PEER_CASES, peer_passes, repeats, progress
        )
    progress("measuring the matmul peak again ...")
    again = matmul_peak(backend, repeats)  # a busy spell during the first measurement must not lower the peak
    out["matmul"] = {
        "rows": [dict(a, gflops=max(a["gflops"], b["gflops"])) for a, b in zip(first["rows"], again["rows"])],
        "peak": max(first["peak"], again["peak"]),
    }
    for row in out["workload"]:
        row["fraction_of_peak"] = None if row["gflops"] is None else row["gflops"] / out["matmul"]["peak"]
    for row in out.get("peers", {}).get("rows", ()):
        for k, v in row.items():
            if isinstance(v, dict) and "gflops" in v:
                v["fraction_of_peak"] = v["gflops"] / out["matmul"]["peak"]
    if with_demo:
        progress("demo sweep end to end ...")
        out["demo"] = demo(backend=backend)
    if levers and backend == "numpy":
        progress("levers: lanes, fused Gram path ...")
        out["code_levers"] = code_levers(repeats)
        progress("levers: OpenBLAS kernels and malloc thresholds (fresh processes) ...")
        out["env_levers"] = env_levers(rounds=repeats)
    return out


def markdown(res: dict) -> str:
    """The tables of docs/benchmarks.md."""
    mc = res["machine"]
    blas = "; ".join(f"{b['internal_api']} {b['version']} {b['architecture']} x{b['num_threads']}" for b in mc["blas"])
    core = mc["perf_env"].get("openblas_coretype", {})
    bi = mc.get("backend_info", {})
    lines = [
        f"Machine: {mc['cpu']}, {mc['cores']} cores"
        + (f", GPU {mc['gpu']} (CuPy {mc['cupy']})" if "gpu" in mc else "")
        + (f"; torch {bi['torch']} on {bi['device']}" if "torch" in bi else "")
        + f"; Python {mc['python']}, NumPy {mc['numpy']}; BLAS {blas}; OPENBLAS_CORETYPE={core.get('value')} "
        f"({core.get('source')}); backend {res['backend']}; medians of {res['repeats']} repeats.",
        "",
        "| matmul (float32; the better of two medians, before and after the workloads) | how | GFLOP/s |",
        "|---|---|---|",
    ]
    lines += [f"| {r['shape']} | {r['how']} | {r['gflops']:.0f} |" for r in res["matmul"]["rows"]]
    lines += [
        f"| **peak** | best of the above | **{res['matmul']['peak']:.0f}** |",
        "",
        f"| workload W (T = {STEPS}, metrics at {res['log_points']} log-spaced steps) | optimizer | B | "
        "problem-steps/s | FLOPs per problem-step | GFLOP/s | fraction of peak |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["workload"]:
        gf = "n/a" if r["gflops"] is None else f"{r['gflops']:.0f}"
        fr = "n/a" if r["fraction_of_peak"] is None else f"{r['fraction_of_peak']:.2f}"
        fl = "n/a" if r["flops_per_step"] is None else f"{r['flops_per_step'] / 1e6:.2f} M = {r['formula']}"
        lines.append(
            f"| {r['case']} {r['m']}x{r['n']}, N = {r['N']} | {r['optimizer']} | {r['B']} | "
            f"{r['problem_steps_per_s']:,.0f} | {fl} | {gf} | {fr} |"
        )
    if "peers" in res:
        lines += ["", *_peer_lines(res["peers"], res["matmul"]["peak"])]
    if "demo" in res:
        d = res["demo"]
        lines += [
            "",
            f"Demo sweep (`{Path(d['config']).name}`, {d['runs']} runs x {d['steps']} steps, {d['jobs']} jobs): "
            f"wall {d['wall_s']:.1f} s, {d['run_steps_per_s']:,.0f} run-steps/s, {d['run_loop_s']:.1f} s in "
            f"runners.run; overhead (everything else) {100 * d['overhead_share']:.1f}% of the wall time.",
        ]
    if "code_levers" in res:
        lines += ["", "| lever (Muon, GFLOP/s) | case | off | on | on / off |", "|---|---|---|---|---|"]
        lines += [
            f"| {r['lever']} | {r['case']} | {r['off']:.0f} | {r['on']:.0f} | {r['on'] / r['off']:.2f} |"
            for r in res["code_levers"]
        ]
    if "env_levers" in res:
        ev = res["env_levers"]
        keys = list(next(iter(ev.values())))
        lines += [
            "",
            "| process settings (fresh process each) | "
            + " | ".join("matmul 512 GFLOP/s" if k == "peak_512" else f"Muon {k} GFLOP/s" for k in keys)
            + " |",
            "|---" * (len(keys) + 1) + "|",
        ]
        lines += [f"| {label} | " + " | ".join(f"{v[k]:.0f}" for k in keys) + " |" for label, v in ev.items()]
    return "\n".join(lines)


def _peer_lines(pr: dict, peak: float) -> list[str]:
    names = pr["names"]
    label = {
        "lab": "lab `runners.run`",
        "lab_torch": "lab, backend torch",
        "lab_bare": "lab, metrics at steps 0, 1, T only",
        "lab_torch_bare": "lab, backend torch, metrics at steps 0, 1, T only",
        "torch": "hand-batched torch.bmm",
        "jax": "JAX + optax muon",
        "floor": "W's matmuls alone, NumPy",
        "floor_torch": "W's matmuls alone, torch",
    }
    v = pr["versions"]
    lines = [
        f"Side by side (Muon on W, T = {STEPS}; {pr['passes']} interleaved passes x {pr['repeats']} runs, medians; "
        f"torch {v.get('torch')} ({v.get('torch_threads')} threads), jax {v.get('jax')}, optax {v.get('optax')}; "
        f"same-run matmul peak {peak:.0f} GFLOP/s). GFLOP/s (fraction of the peak):",
        "",
        "| size | "
        + " | ".join(label.get(k, k) for k in names)
        + " | lab (faster backend) / best peer | lab / faster matmuls alone | best peer / faster matmuls alone |",
        "|---" * (len(names) + 4) + "|",
    ]

    def best(r, keys):
        return max((r[k]["gflops"] for k in keys if r.get(k) is not None), default=None)

    def ratio(a, b):
        return "n/a" if a is None or b is None else f"{a / b:.2f}x"

    for r in pr["rows"]:
        cells = ["skipped" if r[k] is None else f"{r[k]['gflops']:.1f} ({r[k]['gflops'] / peak:.2f})" for k in names]
        peer = best(r, [k for k in names if k not in LAB_ROWS and k not in FLOOR_ROWS])
        lab, floor = best(r, LAB_W), best(r, FLOOR_ROWS)
        lines.append(
            f"| {r['case']} {r['m']}x{r['n']}, B = {r['B']} | "
            + " | ".join(cells)
            + f" | {ratio(lab, peer)} | {ratio(lab, floor)} | {ratio(peer, floor)} |"
        )
    lines += [f"\nRow {k} skipped: {why}" for k, why in pr["missing"].items()]
    return lines


def text(res: dict) -> str:
    """A short human summary."""
    out = [f"matmul peak (float32): {res['matmul']['peak']:.0f} GFLOP/s"]
    for r in res["workload"]:
        gf = "" if r["gflops"] is None else f", {r['gflops']:.0f} GFLOP/s = {r['fraction_of_peak']:.2f} of peak"
        out.append(f"{r['optimizer']:>10} {r['case']:>5}: {r['problem_steps_per_s']:,.0f} problem-steps/s{gf}")
    if "peers" in res:
        out += _peer_lines(res["peers"], res["matmul"]["peak"])
    if "demo" in res:
        d = res["demo"]
        out.append(f"demo: wall {d['wall_s']:.1f} s, overhead {100 * d['overhead_share']:.1f}%")
    return "\n".join(out)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--child":
    print(json.dumps(_child(json.loads(sys.argv[2]))))
