"""A worker for tests of the agreement check: a small regression fit on every rank, with one thing (``--differ``)
changed on the last rank; it writes DIR/rank{R}.npz (its weights) after fit, or DIR/error-rank{R}.txt when the
ranks refused to train together.

    mpiexec -n 2 python -m mpi4py -m portnn.distributed.worker --differ lr --out DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write, write_npz
from .agreement import RanksDisagree
from .communicator import MPICommunicator

# what ``--differ FIELD`` changes on the last rank: (fit keyword or model part, value there)
CASES = {
    "none": None, "x": ("X", 100.0), "lr": ("lr", 0.2), "loss": ("loss", "SSE"), "activation": ("activation", "ReLU"),
    "batch-size": ("batch_size", 8), "seed": ("seed", 4), "model-seed": ("model_seed", 1), "epochs": ("epochs", 3),
    "resumed": ("resumed", 1),
}


def fit_case(args: argparse.Namespace) -> None:
    """A small regression fit on every rank, with ``args.differ`` changed on the last rank (see ``CASES``)."""
    import portnn
    from portnn.data import datasets

    comm = MPICommunicator()
    change = CASES[args.differ] if comm.rank == comm.size - 1 else None
    case: dict[str, Any] = {} if change is None else {change[0]: change[1]}
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
    except RanksDisagree as err:  # raised on every rank by construction: wait for all to record it
        message = str(err).encode()
        atomic_write(out / f"error-rank{comm.rank}.txt", lambda f: f.write(message))
        comm.barrier()
        raise
    write_npz(out / f"rank{comm.rank}.npz", net.state_dict())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m portnn.distributed.worker", description=__doc__.split("\n\n")[0])
    p.add_argument("--differ", choices=list(CASES), required=True, help="what the last rank changes")
    p.add_argument("--out", required=True, help="folder for rank{R}.npz or error-rank{R}.txt")
    fit_case(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
