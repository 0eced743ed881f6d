"""The MPI worker behind the 1-vs-N-rank benchmark (``portnn.bench.distributed``): times MLP epochs
(``portnn.bench.mlp.MLPSpec``) data-parallel and writes DIR/bench-rank{R}.npz with the epoch seconds.

    mpiexec -n 2 python -m mpi4py -m portnn.bench.ranks --out DIR
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ..distributed import MPICommunicator
from ..io.atomic import write_npz
from ..nn import SoftmaxCrossEntropy
from ..optim import SGD
from .mlp import MLPSpec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m portnn.bench.ranks", description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=60_000, help="samples per epoch")
    p.add_argument("--batch", type=int, default=256, help="global batch size")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--out", required=True, help="folder for bench-rank{R}.npz")
    args = p.parse_args(argv)
    comm = MPICommunicator()
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
    write_npz(Path(args.out) / f"bench-rank{comm.rank}.npz", {"seconds": np.diff(np.array(ends))})
    return 0


if __name__ == "__main__":
    sys.exit(main())
