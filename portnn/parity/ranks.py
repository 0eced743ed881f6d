"""The MPI worker behind ``portnn parity --distributed N``: trains a recipe's parity problem (one host
initialisation, the recipe's data and hyper-parameters) data-parallel and writes, from EVERY rank,
DIR/rank{R}-{DTYPE}.npz (atomically): its final weights 'param/INDEX.NAME', 'losses' (the global-batch loss of every
step, from a per-step callback), 'seconds' (fit's wall time) and 'traces' (how many functions fit compiled).

    mpiexec -n 2 python -m mpi4py -m portnn.parity.ranks --example mlp --dtype float64 --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..array import backends, host
from ..distributed import MPICommunicator
from ..io.atomic import write_npz
from ..train.callbacks import Callback, StepEvent
from .run import DTYPES, Problem


class StepLosses(Callback):
    """Keeps the (global-batch) loss of every training step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_step(self, event: StepEvent) -> None:
        self.losses.append(event.loss)


def train_problem(problem: Problem, backend: str, device: str | None, dtype: str,
                  comm: Any, compile: bool | str = "auto") -> tuple[Any, list[float], float]:
    """Train ``problem`` (data-parallel over ``comm``, or in this process when None; ``compile`` as fit's); returns
    (model, per-step losses, seconds of fit)."""
    xp, dev = backends.load(backend, device)
    net = problem.model().to(xp, dev, dtype)
    X = host.from_numpy(problem.X, xp, device=dev, dtype=None)
    y = host.from_numpy(problem.y, xp, device=dev, dtype=None)
    recorder = StepLosses()
    start = time.perf_counter()
    net.fit(X, y, loss=problem.recipe.loss(), optimizer=problem.recipe.optimizer(problem.lr), epochs=problem.epochs,
            **problem.recipe.controls(problem.epochs),
            batch_size=problem.batch_size, metrics=[], communicator=comm, callbacks=[recorder], compile=compile)
    return net, recorder.losses, time.perf_counter() - start


def problem_of(args: argparse.Namespace) -> Problem:
    """The parity problem named by the command line (recipe, seed, epochs, optional batch-size override)."""
    problem = Problem.from_recipe(args.example, args.seed, args.epochs)
    if args.batch_size is not None:
        problem = dataclasses.replace(problem, batch_size=args.batch_size)
    return problem


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m portnn.parity.ranks", description=__doc__.split("\n\n")[0])
    p.add_argument("--example", default="mlp", help="recipe name")
    p.add_argument("--seed", type=int, default=1, help="seed of the host initialisation and shuffles")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size (default: the recipe's)")
    p.add_argument("--dtype", default=",".join(DTYPES), help="float32, float64 or both")
    p.add_argument("--backend", default="numpy", help="backend from backends/")
    p.add_argument("--device", default=None, help="device string (e.g. device1)")
    p.add_argument("--compile", action="store_true", help="compile the step (the backend's [compile] method)")
    p.add_argument("--out", required=True, help="folder for rank{R}-{DTYPE}.npz")
    args = p.parse_args(argv)
    comm = MPICommunicator()
    problem = problem_of(args)
    for dtype in [d for d in DTYPES if d in args.dtype.split(",")]:
        net, losses, seconds = train_problem(problem, args.backend, args.device, dtype, comm,
                                             True if args.compile else "auto")
        arrays = {f"param/{k}": v for k, v in net.state_dict().items()}
        write_npz(Path(args.out) / f"rank{comm.rank}-{dtype}.npz",
                  {**arrays, "losses": np.array(losses, dtype=np.float64), "seconds": np.array(seconds),
                   "traces": np.array(net.compile_stats.get("traces", 0))})
    return 0


if __name__ == "__main__":
    sys.exit(main())
