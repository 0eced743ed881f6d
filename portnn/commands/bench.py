"""``portnn bench``: the benchmark suite (matmul peak, MLP epoch, seed net, CNN epoch, peak memory) as a table."""

from __future__ import annotations

import argparse
import json
import sys

from .. import bench, checkpoint


def _threads(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--threads must be comma-separated positive ints, got {text!r}") from err
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--threads must be comma-separated positive ints, got {text!r}")
    return values


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark portnn against hand-written NumPy and torch (see README, Performance)")
    p.add_argument("--backend", default="numpy", help="backend from backends/ (numpy, cupy, torch, ...)")
    p.add_argument("--device", default=None, help="device string, e.g. cpu, cuda, cuda:1")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that the suite runs, not the speed")
    p.add_argument("--threads", type=_threads, default=(1, 2), help="CPU thread counts to run, e.g. 1,2")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per workload (after one warm-up round)")
    p.add_argument("--no-torch", dest="torch", action="store_false", help="leave out the torch reference rows")
    p.add_argument("--only", default=None, help=f"comma-separated sections out of {','.join(bench.Options.sections)}")
    p.add_argument("--json", default=None, metavar="FILE", help="also write every row and bar as JSON here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    sections = bench.Options.sections
    if args.only:
        sections = tuple(s.strip() for s in args.only.split(","))
        unknown = sorted(set(sections) - set(bench.Options.sections))
        if unknown:
            raise ValueError(f"--only: unknown sections {unknown}; known: {', '.join(bench.Options.sections)}")
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    opts = bench.Options(backend=args.backend, device=args.device, quick=args.quick, threads=args.threads,
                         repeats=2 if args.quick and args.repeats == 5 else args.repeats, torch=args.torch,
                         sections=sections)
    result = bench.run_suite(opts, log=lambda msg: print(f"portnn bench: {msg}", file=sys.stderr, flush=True))
    print(bench.table(result))
    if args.json:
        data = json.dumps(result, indent=1).encode()
        checkpoint.atomic_write(args.json, lambda f: f.write(data))
        print(f"\nwrote {args.json}")
    return 0
