"""Distributed parity: train a recipe's parity problem on N MPI ranks and compare with single-process NumPy
training from the same initialisation and global batches, in the table of ``portnn parity``.

A row passes when its weights and per-step losses are within the NumPy backend's tolerances (backends/numpy.toml:
1e-12 float64, 1e-5 float32, as |dW| / max(1, |W|)) AND every rank ended with bit-identical weights.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..array import backends
from ..distributed import launch
from .check import Reference, Report, Row, compare, compute_reference, versions
from .run import REFERENCE, Problem, Run, Target, parse_targets, tolerance


def label(ranks: int, backend: str, compiled: bool = False) -> str:
    """How a distributed run shows in the backend column, e.g. 'numpy x2 ranks', 'jax (jit) x4 ranks'."""
    shown = Target(backend, "", "", compiled).label if compiled else backend
    return f"{shown} x{ranks} ranks"


def train(problem: Problem, ranks: int, dtypes: tuple[str, ...], backend: str = "numpy", device: str | None = None,
          timeout: float = 600.0, compiled: bool = False) -> dict[str, tuple[Run, bool]]:
    """Run ``problem`` on ``ranks`` MPI ranks (``compiled``: the step compiled around the Allreduce); per dtype:
    (rank 0's Run, True when all ranks' weights are bit-identical)."""
    argv = ["-m", "portnn.parity.ranks", "--example", problem.recipe.name, "--seed", str(problem.seed),
            "--epochs", str(problem.epochs), "--dtype", ",".join(dtypes), "--backend", backend,
            *(["--compile"] if compiled else [])]
    if problem.batch_size is not None:
        argv += ["--batch-size", str(problem.batch_size)]
    if device is not None:
        argv += ["--device", device]
    out: dict[str, tuple[Run, bool]] = {}
    with tempfile.TemporaryDirectory(prefix="portnn-parity-") as folder:
        done, _ = launch.run(ranks, [*argv, "--out", folder], timeout=timeout)
        launch.check(done, f"the {ranks}-rank parity job")
        for dtype in dtypes:
            files = [np.load(Path(folder) / f"rank{r}-{dtype}.npz") for r in range(ranks)]
            weights = [{k.removeprefix("param/"): f[k] for k in f.files if k.startswith("param/")} for f in files]
            identical = all(w[k].tobytes() == weights[0][k].tobytes() for w in weights[1:] for k in weights[0])
            shown = device or next(iter(backends.get(backend).devices), "default")
            run = Run(Target(label(ranks, backend, compiled), shown, dtype), weights[0],
                      [float(v) for v in files[0]["losses"]], float(files[0]["seconds"]))
            out[dtype] = (run, identical)
    return out


def check(problem: Problem, ranks: int, dtypes: tuple[str, ...], *, reference: Reference | None = None,
          backend: str = "numpy", device: str | None = None, tol_override: float | None = None,
          timeout: float = 600.0, compiled: bool = False) -> Report:
    """The parity report of ``problem`` trained on ``ranks`` ranks against single-process NumPy."""
    if reference is None:
        reference = compute_reference(problem, dtypes)
    rows: list[Row] = []
    for dtype, (run, identical) in train(problem, ranks, dtypes, backend, device, timeout, compiled).items():
        tol = tolerance(Target(*REFERENCE, dtype), problem.recipe.name, tol_override)
        row = compare(run, reference, tol)
        if not identical:
            row.passed = False
            row.error = f"the {ranks} ranks ended with different weights (they must be bit-identical)"
        rows.append(row)
    source = f"{reference.source} (single process, same global batches)"
    return Report(problem.hyper(), source, rows, versions=versions(), tol_override=tol_override)


def from_args(args: Any, problem: Problem, dtypes: tuple[str, ...]) -> Report:
    """``portnn parity --distributed N [--backends NAME[:DEVICE]] [--tol X]``: the report of ``check``."""
    ranks = args.distributed
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 1:
        raise ValueError(f"--distributed: the number of ranks must be >= 1, got {ranks!r}")
    if args.against or args.check_dumps or args.trace:
        raise ValueError("--distributed compares N ranks with a single-process NumPy run computed here: "
                         "drop --against/--check-dumps/--trace")
    backend, device, compiled = "numpy", None, False
    if args.backends:
        targets = {(t.backend, t.device, t.compiled) for t in parse_targets(args.backends, dtypes)}
        if len(targets) != 1:
            raise ValueError(f"--distributed runs one backend and device, compiled or not; --backends "
                             f"{args.backends!r} names {len(targets)}")
        backend, device, compiled = targets.pop()
    return check(problem, ranks, dtypes, backend=backend, device=device, tol_override=args.tol, compiled=compiled)
