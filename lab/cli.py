"""The ``muonlab`` command: a thin layer over the Python API. Bad input -> one line on stderr,
exit code 2, no traceback."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

EARLY_INTERRUPT = "muonlab: interrupted during start-up; nothing more was written"


def _interrupted_early(signum, frame):  # Ctrl-C before main() is running: one line, exit 130
    os.write(2, (EARLY_INTERRUPT + "\n").encode())
    os._exit(130)


if __name__ == "__main__" or Path(sys.argv[0] if sys.argv else "").name == "muonlab":  # the command, not an import
    signal.signal(signal.SIGINT, _interrupted_early)

from .perf_env import configure as _configure_perf_env  # noqa: E402

_configure_perf_env()  # before NumPy loads (OPENBLAS_CORETYPE is read then); recorded in manifests

from .errors import ConfigError  # noqa: E402  (standard library only)
# Everything else is imported inside main(), so that Ctrl-C while the imports run (seconds on a
# busy machine) ends in one line and exit code 130, not a traceback.

STAGE_LOGGERS = ("lab.stage", "analysis.stage")  # one line per stage of a sweep and of its analysis


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        self.exit(2, f"muonlab: error: {message}\n")


def _cmd_run(args) -> int:
    from .api import dry_run, run_sweep

    options = dict(executor=args.executor, scheduler=args.scheduler, workers=args.workers)
    if args.dry_run:
        for line in dry_run(args.config, out_dir=args.out, backend=args.backend, dtype=args.dtype, **options):
            print(line)
        return 0
    res = run_sweep(
        args.config,
        out_dir=args.out,
        backend=args.backend,
        dtype=args.dtype,
        force=args.force,
        progress=not args.quiet,
        report=args.report,
        **options,
    )
    if not res["complete"]:
        print(
            f"muonlab: {res['failed_jobs']} of {res['n_jobs']} jobs failed; the others are kept. "
            f"See `muonlab status {args.out}`; re-run the same command to retry them.",
            file=sys.stderr,
        )
        return 1
    if res["jobs_run_now"] == 0:
        done = f"nothing to run, all {res['n_jobs']} jobs were done"
    else:
        rate = res["run_steps_now"] / max(res["execute_wall_s"], 1e-9)
        done = f"{res['jobs_run_now']} run now, {rate:,.0f} run-steps/s in the jobs"
    n = f"{res['n_runs']} runs ({res['diverged']} diverged) in {res['n_jobs']} jobs"
    print(f"{n}, {done}; wall {res['wall_s']:.1f} s")
    out = Path(args.out)
    print(f"result grids: {out}/runs.csv curves.csv summary.csv phase.csv manifest.json")
    figs = sorted(p.name for p in out.glob("*.png"))
    print(f"figures: {out}/" + " ".join(figs))
    if "report_html" in res["paths"]:
        print(f"report: {res['paths']['report_html']}")
    return 0


def _cmd_report(args) -> int:
    from .api import report

    paths = report(args.dir, criterion=args.criterion, focus=args.focus, refine_edges=args.refine_edges)
    print(f"report: {paths['report_html']} ({paths['report_md'].name}); tables and figures in {args.dir}")
    if "refine_edges" in paths:
        print(
            f"edge lrs: widened grids in {paths['refine_edges']}; run them with: muonlab run {paths['refine_edges']} "
            f"--out {args.dir}_refined"
        )
    return 0


def _cmd_reproduce(args) -> int:
    from .claims import claim_paths, reproduce

    names = list(claim_paths()) if args.all else args.names
    if not names:
        raise ConfigError("reproduce: name a claim or pass --all; `muonlab presets` lists the claim names")
    for name in names:
        res = reproduce(name, full=args.full, progress=not args.quiet, force=args.force, docs=args.docs)
        print(
            f"{res['name']}: {res['verdict']} ({', '.join(res['sub_verdicts'])}) in {res['wall_s']:.0f} s -> "
            f"{res['page']} (data in {res['out']})"
        )
    return 0


def _cmd_status(args) -> int:
    from .api import sweep_status

    st = sweep_status(args.dir)
    j, r = st["jobs"], st["runs"]
    state = {"running": "running, or interrupted (re-run the same command to resume)"}.get(st["status"], st["status"])
    if st["damaged"] or st["damaged_grids"]:
        state += "; DAMAGED (re-run the same command to recompute the damaged parts and rebuild the grids)"
    print(f"{st['dir']}: sweep {st['name']!r} (config {st['config_hash']}), {state}")
    for what, n in (("jobs", j), ("runs", r)):
        damaged = f", {n['damaged']} damaged" if n["damaged"] else ""
        print(f"{what}: {n['done']} done, {n['pending']} pending, {n['failed']} failed{damaged} (of {n['total']})")
    for key, err in st["failed"].items():
        print(f"failed {key}: {err}")
    for key, why in st["damaged"].items():
        print(f"damaged {key}: {why}")
    for name, why in st["damaged_grids"].items():
        print(f"damaged {Path(st['dir']) / name}: {why}")
    return 0


def _cmd_presets(args) -> int:
    from .api import preset_entries

    found = preset_entries(args.dir)
    if not found:
        where = ", ".join(args.dir) if args.dir else "the presets directory"
        raise ConfigError(f"dir: no *.toml presets in {where}")

    def shown(p) -> str:
        try:
            return str(Path(p).resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(p)

    sweeps = [(shown(p), desc) for p, desc, claim in found if claim is None]
    claims = [(claim, f"{desc} ({shown(p)})") for p, desc, claim in found if claim is not None]
    for title, rows in (("sweep presets: muonlab run PATH", sweeps), ("claim presets: muonlab reproduce NAME", claims)):
        if rows:
            print(title)
            width = max(len(a) for a, _ in rows)
            for a, desc in rows:
                print(f"  {a:<{width}}  {desc}")
    return 0


def _cmd_bench(args) -> int:
    import json

    from . import bench

    res = bench.bench(
        args.backend,
        cases=args.cases.split(","),
        optimizers=args.optimizers and args.optimizers.split(","),
        repeats=args.repeats,
        with_demo=not args.no_demo,
        levers=args.levers,
        peers=args.peers,
        peer_passes=args.passes,
        progress=lambda s: print(s, file=sys.stderr),
    )
    print(bench.markdown(res) if args.markdown else bench.text(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    return 0


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is logged (tests and tools replace it)."""

    stream = property(lambda self: sys.stderr, lambda self, value: None)


def _stage_lines(on: bool) -> None:
    """Print the stage lines of the lab and the analysis (their loggers, INFO) on stderr."""
    for name in STAGE_LOGGERS:
        log = logging.getLogger(name)
        log.handlers = [h for h in log.handlers if not getattr(h, "_muonlab", False)]
        if on:
            handler = _StderrHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            handler._muonlab = True
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = False


def main(argv=None) -> int:
    where = {"at": "start-up"}
    try:
        if signal.getsignal(signal.SIGINT) is _interrupted_early:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on, KeyboardInterrupt below
        return _main(argv, where)
    except KeyboardInterrupt:
        if where["at"] == "run":
            msg = "interrupted; finished jobs are kept, re-run the same command to resume"
        else:
            msg = EARLY_INTERRUPT.removeprefix("muonlab: ").replace("start-up", where["at"])
        print(f"muonlab: {msg}", file=sys.stderr)
        return 130
    finally:
        _stage_lines(False)  # the stage lines end with the command


def _main(argv, where: dict) -> int:
    from problems.backend import BACKENDS, DTYPES, BackendError  # noqa: PLC0415
    from problems.params import ParamError  # noqa: PLC0415

    from .config import CRITERIA  # noqa: PLC0415

    parser = _Parser(
        prog="muonlab", description="Where does Muon beat GD, SignSGD and MVR? Run sweeps, get tables and figures."
    )
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        ver = version("muonlab")
    except PackageNotFoundError:  # run from a checkout that is not installed
        ver = "unknown (not installed)"
    parser.add_argument("--version", action="version", version=f"muonlab {ver}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a sweep config into a results directory (resumes if interrupted)")
    run.add_argument("config", help="TOML sweep config, e.g. configs/demo.toml")
    run.add_argument("--out", default="results/sweep", help="results directory")
    run.add_argument("--backend", choices=BACKENDS, help="override the config's backend")
    run.add_argument("--dtype", choices=DTYPES, help="override the config's dtype")
    run.add_argument("--force", action="store_true", help="discard results of a different config in --out")
    run.add_argument("--quiet", action="store_true", help="no progress bar, no stage lines")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan, the estimate (memory, time) and the files it would write; write nothing",
    )
    run.add_argument("--report", action="store_true", help="also write report.md and report.html (muonlab report)")
    run.add_argument("--executor", default="local", help="where jobs run: local (default, this process) or dask")
    run.add_argument(
        "--scheduler", metavar="ADDRESS", help="dask: address of a running scheduler, e.g. tcp://host:8786"
    )
    run.add_argument(
        "--workers", type=int, metavar="N", help="dask without --scheduler: worker processes of the local cluster"
    )
    run.set_defaults(func=_cmd_run)
    rep = sub.add_parser(
        "report", help="analyze a finished sweep directory: tables, figures, report.md and report.html"
    )
    rep.add_argument("dir", help="results directory of a sweep (runs.csv, curves.csv, manifest.json)")
    rep.add_argument("--criterion", choices=CRITERIA, help="override the config's tuning criterion")
    rep.add_argument("--focus", help="override the focus optimizer (label) of the log-ratio maps")
    rep.add_argument(
        "--refine-edges",
        action="store_true",
        help="write DIR/refine_edges.toml: lr grids widened where a tuned lr sat at an edge",
    )
    rep.set_defaults(func=_cmd_report)
    st = sub.add_parser("status", help="jobs done / pending / failed in a (partial) sweep directory")
    st.add_argument("dir")
    st.set_defaults(func=_cmd_status)
    pre = sub.add_parser(
        "presets", help="list the presets: sweep configs (the path `run` takes) and claims (the name `reproduce` takes)"
    )
    pre.add_argument("dir", nargs="*", help="directories to list (default: the presets shipped with muonlab)")
    pre.set_defaults(func=_cmd_presets)
    rp = sub.add_parser(
        "reproduce", help="run a claim's preset and write its verdict page (results/claims/pages/, or --docs)"
    )
    rp.add_argument("names", nargs="*", help="claim names (`muonlab presets` lists them) or claim preset paths")
    rp.add_argument("--all", action="store_true", help="every claim preset")
    rp.add_argument("--full", action="store_true", help="the larger version (GPU or cluster)")
    rp.add_argument("--force", action="store_true", help="discard earlier results of a changed preset")
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    rp.add_argument(
        "--docs",
        nargs="?",
        const="docs",
        metavar="DIR",
        help="write the page into DIR/claims/ and DIR/claims.md (default DIR: docs, the checkout's claim pages)",
    )
    rp.set_defaults(func=_cmd_reproduce)
    ben = sub.add_parser("bench", help="matmul peak and the lab's throughput on workload W (docs/benchmarks.md)")
    ben.add_argument("--backend", choices=BACKENDS, default="numpy")
    ben.add_argument("--cases", default="small,large,tall,wide", help="comma-separated: small,large,tall,wide")
    ben.add_argument("--optimizers", help="comma-separated registry names (default: muon, gd, signsgd, *mvr2*)")
    ben.add_argument("--repeats", type=int, default=5, help="timed repeats per figure (the median is reported)")
    ben.add_argument("--no-demo", action="store_true", help="skip the demo sweep end to end")
    ben.add_argument("--levers", action="store_true", help="also measure each speed lever off vs on")
    ben.add_argument(
        "--peers", action="store_true", help="also run the torch / JAX peers of W (small, large), interleaved"
    )
    ben.add_argument("--passes", type=int, default=3, help="--peers: interleaved passes (the median is reported)")
    ben.add_argument("--markdown", action="store_true", help="print the docs/benchmarks.md tables")
    ben.add_argument("--json", help="write all figures to this JSON file")
    ben.set_defaults(func=_cmd_bench)
    args = parser.parse_args(argv)
    where["at"] = args.command
    _stage_lines(not getattr(args, "quiet", False))
    try:
        return args.func(args)
    except (ConfigError, ParamError, BackendError) as e:
        print(f"muonlab: error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            "muonlab: error: out of memory (MemoryError); see `muonlab run --dry-run CONFIG` for the estimate, "
            "and lower the sizes or memory_budget_mb",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
