"""``portnn train --distributed``: the MPI communicator for the command (only rank 0 prints and writes) and the
collective check at the end that every rank holds the same weights."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..distributed import Communicator, MPICommunicator, same_weights


def for_train(args: argparse.Namespace) -> Communicator | None:
    """The MPI communicator (None without --distributed). On every rank but 0, stdout and the progress bar are
    silenced and --save/--plot dropped, so one rank prints and writes checkpoints (errors still reach stderr)."""
    if not getattr(args, "distributed", False):
        return None
    comm = MPICommunicator()
    if comm.rank != 0:
        args.quiet, args.save, args.plot = True, None, None
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of this rank's life
    else:
        print(f"data-parallel over {comm.size} MPI rank(s): every global batch is split by rows across the ranks; "
              "rank 0 prints and saves")
    return comm


def finish_train(net: Any, comm: Communicator | None) -> None:
    """Check (collectively) that every rank holds the same weights."""
    if comm is None:
        return
    if not same_weights(net, comm):
        raise RuntimeError(f"the {comm.size} ranks ended with different weights; they must be bit-identical")
    print(f"weights bit-identical on all {comm.size} ranks")
