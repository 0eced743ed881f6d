"""``portnn bench``: the benchmark suite (matmul peak, MLP epoch, seed net, CNN epoch, peak memory) as a table."""

from __future__ import annotations

import argparse
import json
import sys

from ..bench import suite as bench
from ..io.atomic import atomic_write
from . import paths
from .options import positive_int


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
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes: checks that the suite runs, not the speed (no bar is judged)")
    p.add_argument("--threads", type=_threads, default=(1, 2), help="CPU thread counts to run, e.g. 1,2")
    p.add_argument("--repeats", type=positive_int, default=None,
                   help="timed rounds per workload after one warm-up round (default 5; 2 with --quick)")
    p.add_argument("--no-torch", dest="torch", action="store_false", help="leave out the torch reference rows")
    p.add_argument("--only", default=None, help=f"comma-separated sections out of {','.join(bench.Options.sections)}")
    p.add_argument("--json", default=None, metavar="FILE.json", help="also write every row and bar as JSON here")
    p.add_argument("--fail-on-bars", action="store_true",
                   help="exit 1 when a judged bar fails (default: exit 0, the bars are reported, not enforced)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    paths.output_file(args.json, "--json", (".json",))
    sections = bench.Options.sections
    if args.only:
        sections = tuple(s.strip() for s in args.only.split(","))
        unknown = sorted(set(sections) - set(bench.Options.sections))
        if unknown:
            raise ValueError(f"--only: unknown sections {unknown}; known: {', '.join(bench.Options.sections)}")
    repeats = args.repeats if args.repeats is not None else 2 if args.quick else 5
    opts = bench.Options(backend=args.backend, device=args.device, quick=args.quick, threads=args.threads,
                         repeats=repeats, torch=args.torch, sections=sections)
    result = bench.run_suite(opts, log=lambda msg: print(f"portnn bench: {msg}", file=sys.stderr, flush=True))
    print(bench.table(result))
    if args.json:
        data = json.dumps(result, indent=1).encode()
        atomic_write(args.json, lambda f: f.write(data))
        print(f"\nwrote {args.json}")
    failed = bench.failed_bars(result)
    return 1 if args.fail_on_bars and failed else 0
