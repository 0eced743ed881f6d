"""The MPI side of the command line: ``portnn train --distributed`` (``for_train``/``finish_train``), and the worker
behind ``portnn parity --distributed N`` (and the MPI tests) and the 1-vs-N-rank benchmark:

    mpiexec -n 2 python -m mpi4py -m portnn.distributed_cli parity --example mlp --dtype float64 --out DIR
    mpiexec -n 2 python -m mpi4py -m portnn.distributed_cli bench --out DIR
    mpiexec -n 2 python -m mpi4py -m portnn.distributed_cli fit-case --differ lr --out DIR

``parity`` trains the parity problem of a recipe (``portnn.parity.Problem``: one host initialisation, the recipe's
data and hyper-parameters) data-parallel and writes, from EVERY rank, DIR/rank{R}-{DTYPE}.npz (atomically): its
final weights 'param/INDEX.NAME', 'losses' (the global-batch loss of every step) and 'seconds' (fit's wall time).
``bench`` times MLP epochs (``portnn.bench_mlp.MLPSpec``) and writes DIR/bench-rank{R}.npz with the epoch seconds.
``fit-case`` trains a small regression net on every rank, with one thing (``--differ``) changed on the last rank, and
writes DIR/rank{R}.npz (its weights) after fit, or DIR/error-rank{R}.txt when the ranks refused to train together.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import backends, checkpoint, distributed, host
from .parity import DTYPES, Problem


class StepLosses(distributed.Communicator):
    """Wraps a communicator and keeps the global loss of every training step (the last value of each gradient
    Allreduce, which is ``count`` values long)."""

    def __init__(self, inner: distributed.Communicator, count: int) -> None:
        self.inner, self.count, self.losses = inner, count, []
        self.rank, self.size, self.device_buffers = inner.rank, inner.size, inner.device_buffers

    def allreduce(self, buffer: Any) -> Any:
        out = self.inner.allreduce(buffer)
        if buffer.shape[0] == self.count:
            self.losses.append(host.to_float(out[-1]))
        return out

    def broadcast(self, buffer: Any, root: int = 0) -> Any:
        return self.inner.broadcast(buffer, root)

    def allgather(self, buffer: Any) -> Any:
        return self.inner.allgather(buffer)

    def barrier(self) -> None:
        self.inner.barrier()


def for_train(args: argparse.Namespace) -> distributed.Communicator | None:
    """``portnn train --distributed``: the MPI communicator (None without the flag). On every rank but 0, stdout and
    the progress bar are silenced and --save/--plot dropped, so one rank prints and writes checkpoints (errors
    still reach stderr from any rank)."""
    if not getattr(args, "distributed", False):
        return None
    comm = distributed.MPICommunicator()
    if comm.rank != 0:
        args.quiet, args.save, args.plot = True, None, None
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of this rank's life
    else:
        print(f"data-parallel over {comm.size} MPI rank(s): every global batch is split by rows across the ranks; "
              "rank 0 prints and saves")
    return comm


def finish_train(net: Any, comm: distributed.Communicator | None) -> None:
    """After ``portnn train --distributed``: check (collectively) that every rank holds the same weights."""
    if comm is None:
        return
    if not distributed.same_weights(net, comm):
        raise RuntimeError(f"the {comm.size} ranks ended with different weights; they must be bit-identical")
    print(f"weights bit-identical on all {comm.size} ranks")


def train_problem(problem: Problem, backend: str, device: str | None, dtype: str,
                  comm: distributed.Communicator | None) -> tuple[Any, list[float], float]:
    """Train ``problem`` (data-parallel over ``comm``, or in this process when None); returns (model, per-step
    losses (empty without ``comm``), seconds of fit)."""
    xp, dev = backends.load(backend, device)
    net = problem.model().to(xp, dev, dtype)
    X = host.from_numpy(problem.X, xp, device=dev, dtype=None)
    y = host.from_numpy(problem.y, xp, device=dev, dtype=None)
    recorder = None
    if comm is not None:
        recorder = StepLosses(comm, sum(int(np.prod(p.shape)) for p in net.parameters().values()) + 1)
    start = time.perf_counter()
    net.fit(X, y, loss=problem.recipe.loss(), optimizer=problem.recipe.optimizer(problem.lr), epochs=problem.epochs,
            batch_size=problem.batch_size, metrics=[], communicator=recorder)
    return net, [] if recorder is None else recorder.losses, time.perf_counter() - start


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``arrays`` as an .npz at ``path``, written atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    checkpoint.atomic_write(path, lambda f: f.write(buffer.getvalue()))


def problem_of(args: argparse.Namespace) -> Problem:
    """The parity problem named by the command line (recipe, seed, epochs, optional batch-size override)."""
    problem = Problem.from_recipe(args.example, args.seed, args.epochs)
    if args.batch_size is not None:
        problem = dataclasses.replace(problem, batch_size=args.batch_size)
    return problem


def parity(args: argparse.Namespace) -> None:
    comm = distributed.MPICommunicator()
    problem = problem_of(args)
    for dtype in [d for d in DTYPES if d in args.dtype.split(",")]:
        net, losses, seconds = train_problem(problem, args.backend, args.device, dtype, comm)
        arrays = {f"param/{k}": v for k, v in net.state_dict().items()}
        save_npz(Path(args.out) / f"rank{comm.rank}-{dtype}.npz",
                 {**arrays, "losses": np.array(losses, dtype=np.float64), "seconds": np.array(seconds)})


def bench(args: argparse.Namespace) -> None:
    from .bench_mlp import MLPSpec
    from .losses import SoftmaxCrossEntropy
    from .optimizers import SGD

    comm = distributed.MPICommunicator()
    spec = MLPSpec(samples=args.samples, batch=args.batch)
    X, y = spec.data()
    net = spec.model()
    ends: list[float] = []

    def epoch_end(_epoch: int, _loss: float) -> None:
        comm.barrier()  # every rank calls it after each epoch: the time of the slowest rank
        ends.append(time.perf_counter())

    comm.barrier()
    # one fit: the first epoch also holds the start (agreement check with the data's digest, weight broadcast) and
    # warms up allocations and MPI connections, so it is not counted
    net.fit(X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(0.01), epochs=args.epochs + 1, batch_size=spec.batch,
            metrics=[], communicator=comm, progress=epoch_end)
    save_npz(Path(args.out) / f"bench-rank{comm.rank}.npz", {"seconds": np.diff(np.array(ends))})


# what ``fit-case --differ FIELD`` changes on the last rank: (fit keyword or model part, value there)
CASES = {
    "none": None, "x": ("X", 100.0), "lr": ("lr", 0.2), "loss": ("loss", "SSE"), "activation": ("activation", "ReLU"),
    "batch-size": ("batch_size", 8), "seed": ("seed", 4), "model-seed": ("model_seed", 1), "epochs": ("epochs", 3),
    "resumed": ("resumed", 1),
}


def fit_case(args: argparse.Namespace) -> None:
    """A small regression fit on every rank, with ``args.differ`` changed on the last rank (see ``CASES``)."""
    import portnn
    from portnn import datasets

    comm = distributed.MPICommunicator()
    change = CASES[args.differ] if comm.rank == comm.size - 1 else None
    case = {} if change is None else {change[0]: change[1]}
    X, y = datasets.regression(seed=1)
    X = X + case.get("X", 0.0)
    activation = getattr(portnn, case.get("activation", "Tanh"))
    net = portnn.Sequential(portnn.Dense(5, 8), activation(), portnn.Dense(8, 2), seed=case.get("model_seed", 0))
    loss = getattr(portnn, case.get("loss", "MSE"))()
    optimizer = portnn.Adam(case.get("lr", 0.01))
    if case.get("resumed"):  # this rank already trained an epoch on its own (a resumed checkpoint, say)
        net.fit(X, y, loss=loss, optimizer=optimizer, epochs=1, batch_size=16, seed=3)
    out = Path(args.out)
    try:
        net.fit(X, y, loss=loss, optimizer=optimizer, epochs=case.get("epochs", 2),
                batch_size=case.get("batch_size", 16), seed=case.get("seed", 3), communicator=comm)
    except distributed.RanksDisagree as err:  # raised on every rank by construction: wait for all to record it
        message = str(err).encode()
        checkpoint.atomic_write(out / f"error-rank{comm.rank}.txt", lambda f: f.write(message))
        comm.barrier()
        raise
    save_npz(out / f"rank{comm.rank}.npz", net.state_dict())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m portnn.distributed_cli", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    par = sub.add_parser("parity", help="train a recipe's parity problem on every rank")
    par.add_argument("--example", default="mlp", help="recipe name")
    par.add_argument("--seed", type=int, default=1, help="seed of the host initialisation and shuffles")
    par.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    par.add_argument("--batch-size", type=int, default=None, help="global batch size (default: the recipe's)")
    par.add_argument("--dtype", default=",".join(DTYPES), help="float32, float64 or both")
    par.add_argument("--backend", default="numpy", help="backend from backends/")
    par.add_argument("--device", default=None, help="device string (e.g. device1)")
    par.add_argument("--out", required=True, help="folder for rank{R}-{DTYPE}.npz")
    par.set_defaults(work=parity)
    ben = sub.add_parser("bench", help="time MLP epochs (784-256-256-10, float32, SGD) on every rank")
    ben.add_argument("--samples", type=int, default=60_000, help="samples per epoch")
    ben.add_argument("--batch", type=int, default=256, help="global batch size")
    ben.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    ben.add_argument("--out", required=True, help="folder for bench-rank{R}.npz")
    ben.set_defaults(work=bench)
    case = sub.add_parser("fit-case", help="a small fit with one argument changed on the last rank")
    case.add_argument("--differ", choices=list(CASES), required=True, help="what the last rank changes")
    case.add_argument("--out", required=True, help="folder for rank{R}.npz or error-rank{R}.txt")
    case.set_defaults(work=fit_case)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.work(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
