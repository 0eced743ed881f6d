"""``portnn parity``: does every backend train the same network? One host initialisation, every backend/device/
dtype, a PASS/FAIL table against the tolerances in ``backends/``; golden files carry the reference across machines."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from ..array import threads
from ..data import recipes
from ..io import checkpoint
from ..parity.check import Reference, Report, compare, compute_reference, run_parity, versions
from ..parity.golden import dump_run, load_dump, load_golden, save_golden
from ..parity.report import render
from ..parity.run import DTYPES, Problem, default_targets, parse_dtypes, parse_targets, tolerance
from . import paths
from .options import add_threads, non_negative_float, non_negative_int, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parity", help="train one initialisation on every backend and compare with NumPy",
                       description="Does every backend train the same network? One host initialisation, every "
                                   "backend/device/dtype, a PASS/FAIL table against the tolerances in backends/; "
                                   "golden files carry the reference across machines. Exit 0 all PASS, 1 any FAIL, "
                                   "2 on errors.")
    p.add_argument("--example", default=None,
                   help=f"recipe: {', '.join(recipes.RECIPES)} (default seed; with --against, the file's)")
    p.add_argument("--backends", default=None, metavar="LIST",
                   help="comma-separated NAME or NAME:DEVICE (e.g. numpy,array_api_strict,torch:cuda,cupy:cuda:1); "
                        "default: every backend and device runnable here")
    p.add_argument("--dtype", default=",".join(DTYPES), help="float32, float64 or both (default both)")
    p.add_argument("--seed", type=non_negative_int, default=1, help="seed of the host-side initialisation (default 1)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="epochs, at least 1: untrained weights would agree everywhere (default: the recipe's)")
    p.add_argument("--trace", action="store_true",
                   help="compare loss and weights after every step; name the first step and layer out of tolerance "
                        "(with --against: the loss of every step, weights at the end: golden files keep no per-step "
                        "weights)")
    p.add_argument("--tol", type=non_negative_float, default=None, metavar="X",
                   help="use tolerance X for every row instead of backends/*.toml (e.g. 0: where does exactness end?)")
    p.add_argument("--json", default=None, metavar="FILE.json", help="write the report as JSON")
    p.add_argument("--save-golden", default=None, metavar="FILE.npz", help="store the NumPy reference run here")
    p.add_argument("--against", default=None, metavar="FILE.npz",
                   help="re-run the golden file's problem here and compare with its stored result")
    p.add_argument("--dump", default=None, metavar="DIR", help="also write each run's final weights and losses here")
    p.add_argument("--check-dumps", default=None, metavar="DIR",
                   help="train nothing: compare the runs dumped in DIR (by --dump, e.g. in other environments) "
                        "with the golden file given by --against")
    p.add_argument("--distributed", type=positive_int, default=None, metavar="N",
                   help="train on N MPI ranks (data-parallel) and compare with single-process NumPy "
                        "(portnn.parity.distributed; needs the mpi extra)")
    add_threads(p)
    p.set_defaults(run=run)


def _check_paths(args: argparse.Namespace) -> None:
    """Every file and folder this run reads or writes, before anything is trained."""
    paths.input_file(args.against, "--against")
    paths.input_dir(args.check_dumps, "--check-dumps")
    paths.output_file(args.save_golden, "--save-golden", (".npz",))
    paths.output_file(args.json, "--json", (".json",))
    paths.output_dir(args.dump, "--dump")
    paths.not_inputs({"--save-golden": args.save_golden, "--json": args.json, "--dump": args.dump},
                     {"--against": args.against, "--check-dumps": args.check_dumps})


def run(args: argparse.Namespace) -> int:
    _check_paths(args)
    threads.use_threads(args.threads)
    _check_combinations(args)
    problem, reference, dtypes = _problem(args, parse_dtypes(args.dtype))
    report, reference = _report(args, problem, reference, dtypes)
    print(render(report))
    _write(args, problem, reference, report, dtypes)
    return 0 if report.passed else 1


def _check_combinations(args: argparse.Namespace) -> None:
    """Options that contradict each other, refused before any work."""
    if args.against and (args.example or args.save_golden or args.epochs is not None):
        raise ValueError("--against takes the recipe, epochs and data from the golden file: "
                         "drop --example/--epochs/--save-golden")
    if args.save_golden and (args.distributed is not None or args.check_dumps):
        raise ValueError("--save-golden stores a NumPy reference computed here: drop --distributed/--check-dumps")
    if args.check_dumps and not args.against:
        raise ValueError("--check-dumps needs --against GOLDEN.npz (the reference the dumps are compared with)")


def _problem(args: argparse.Namespace, dtypes: tuple[str, ...]) -> tuple[Problem, Reference | None, tuple[str, ...]]:
    """The problem to train, the golden reference (--against) or None, and the dtypes both hold."""
    if not args.against:
        return Problem.from_recipe(args.example or "seed", args.seed, args.epochs), None, dtypes
    problem, reference, _ = load_golden(args.against)
    dtypes = tuple(d for d in dtypes if d in reference.final)
    if not dtypes:
        raise ValueError(f"--against {args.against}: the golden file holds only {', '.join(reference.final)}")
    return problem, reference, dtypes


def _report(args: argparse.Namespace, problem: Problem, reference: Reference | None,
            dtypes: tuple[str, ...]) -> tuple[Report, Reference | None]:
    """Train and compare: across MPI ranks, from dumps made elsewhere, or on this machine's backends."""
    if args.distributed is not None:
        from ..parity import distributed as distributed_parity  # MPI machinery, only when asked for

        return distributed_parity.from_args(args, problem, dtypes), reference
    if args.check_dumps:
        assert reference is not None  # --check-dumps needs --against, checked above
        return _check_dumps(problem, reference, Path(args.check_dumps), args.tol), reference
    skipped: list[str] = []
    if args.backends:
        targets = parse_targets(args.backends, dtypes)
    else:
        targets, skipped = default_targets(dtypes)
    if reference is None:
        reference = compute_reference(problem, dtypes, args.trace)
    report = run_parity(problem, targets, reference=reference, trace=args.trace, tol_override=args.tol)
    report.skipped = skipped
    if args.dump:
        _dump(problem, report, Path(args.dump))
    return report, reference


def _write(args: argparse.Namespace, problem: Problem, reference: Reference | None, report: Report,
           dtypes: tuple[str, ...]) -> None:
    """--save-golden and --json."""
    if args.save_golden:
        command = ["portnn", "parity", "--example", problem.recipe.name, "--seed", str(problem.seed), "--dtype",
                   ",".join(dtypes), *(["--epochs", str(args.epochs)] if args.epochs is not None else []),
                   "--backends", "numpy", "--save-golden", str(args.save_golden)]
        assert reference is not None  # computed above: --save-golden excludes --distributed and --check-dumps
        save_golden(args.save_golden, problem, reference, command=shlex.join(command))
        print(f"golden file written: {args.save_golden}")
    if args.json:
        text = json.dumps(report.as_dict(), indent=1, allow_nan=False, default=str)
        checkpoint.atomic_write(args.json, lambda f: f.write(text.encode()))
        print(f"report written: {args.json}")


def _dump(problem: Problem, report: Report, folder: Path) -> None:
    """Write every completed run (final weights, per-step losses) into ``folder`` for --check-dumps elsewhere."""
    for row in report.rows:
        if row.run is not None:
            print(f"dumped {dump_run(folder, row.run, problem)}")


def _check_dumps(problem: Problem, reference: Reference, folder: Path, tol_override: float | None) -> Report:
    files = sorted(folder.glob(f"{problem.recipe.name}-*.npz"))
    if not files:
        raise FileNotFoundError(f"--check-dumps: no {problem.recipe.name}-*.npz files in {folder}")
    rows = []
    for path in files:
        run_, meta = load_dump(path)
        tol = tolerance(run_.target, problem.recipe.name, tol_override)
        if meta["hyper"] != problem.hyper():
            raise ValueError(f"{path} was trained with {meta['hyper']}, the golden file has {problem.hyper()}")
        rows.append(compare(run_, reference, tol))
    return Report(problem.hyper(), f"{reference.source}; runs read from {folder}", rows, versions=versions(),
                  tol_override=tol_override)
