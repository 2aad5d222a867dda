"""The ``muonlab`` command: a thin layer over the Python API. Bad input -> one line on stderr,
exit code 2, no traceback."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .perf_env import configure as _configure_perf_env

_configure_perf_env()  # before NumPy loads (OPENBLAS_CORETYPE is read then); recorded in manifests

from problems.params import ParamError  # noqa: E402

from .backend import BACKENDS, DTYPES, BackendError  # noqa: E402
from .errors import ConfigError  # noqa: E402


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        self.exit(2, f"muonlab: error: {message}\n")


def _cmd_run(args) -> int:
    from .api import run_sweep

    res = run_sweep(args.config, out_dir=args.out, backend=args.backend, dtype=args.dtype, force=args.force,
                    progress=not args.quiet)
    rate = res["n_runs"] * res["steps"] / max(res["execute_wall_s"], 1e-9)
    print(f"{res['n_runs']} runs ({res['diverged']} diverged) in {res['n_jobs']} jobs, {res['jobs_run_now']} run now; "
          f"wall {res['wall_s']:.1f} s, {rate:,.0f} run-steps/s in the jobs")
    out = Path(args.out)
    print(f"result grids: {out}/runs.csv curves.csv summary.csv phase.csv manifest.json")
    figs = sorted(p.name for p in out.glob("*.png"))
    print(f"figures: {out}/" + " ".join(figs))
    return 0


def _cmd_report(args) -> int:
    import analysis

    if not (Path(args.dir) / "runs.csv").exists():
        raise ConfigError(f"dir: {args.dir} holds no runs.csv; run a sweep into it first")
    paths = analysis.report(args.dir)
    print("wrote " + " ".join(sorted(str(p) for p in paths.values())))
    return 0


def _cmd_bench(args) -> int:
    import json

    from . import bench

    res = bench.bench(args.backend, cases=args.cases.split(","), optimizers=args.optimizers and args.optimizers.split(","),
                      repeats=args.repeats, with_demo=not args.no_demo, levers=args.levers,
                      progress=lambda s: print(s, file=sys.stderr))
    print(bench.markdown(res) if args.markdown else bench.text(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    return 0


def main(argv=None) -> int:
    parser = _Parser(prog="muonlab", description="Where does Muon beat GD, SignSGD and MVR? Run sweeps, get tables and figures.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a sweep config into a results directory (resumes if interrupted)")
    run.add_argument("config", help="TOML sweep config, e.g. configs/demo.toml")
    run.add_argument("--out", default="results/sweep", help="results directory")
    run.add_argument("--backend", choices=BACKENDS, help="override the config's backend")
    run.add_argument("--dtype", choices=DTYPES, help="override the config's dtype")
    run.add_argument("--force", action="store_true", help="discard results of a different config in --out")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_cmd_run)
    rep = sub.add_parser("report", help="re-run the analysis of a finished sweep directory")
    rep.add_argument("dir")
    rep.set_defaults(func=_cmd_report)
    ben = sub.add_parser("bench", help="matmul peak and the lab's throughput on workload W (docs/benchmarks.md)")
    ben.add_argument("--backend", choices=BACKENDS, default="numpy")
    ben.add_argument("--cases", default="small,large,tall,wide", help="comma-separated: small,large,tall,wide")
    ben.add_argument("--optimizers", help="comma-separated registry names (default: muon, gd, signsgd, *mvr2*)")
    ben.add_argument("--repeats", type=int, default=5, help="timed repeats per figure (the median is reported)")
    ben.add_argument("--no-demo", action="store_true", help="skip the demo sweep end to end")
    ben.add_argument("--levers", action="store_true", help="also measure each speed lever off vs on")
    ben.add_argument("--markdown", action="store_true", help="print the docs/benchmarks.md tables")
    ben.add_argument("--json", help="write all figures to this JSON file")
    ben.set_defaults(func=_cmd_bench)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ParamError, BackendError) as e:
        print(f"muonlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("muonlab: interrupted; finished jobs are kept, re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
