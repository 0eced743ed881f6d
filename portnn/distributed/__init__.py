"""Data-parallel training over MPI, plugged into ``fit(communicator=...)`` from outside the training code.

Launch with ``mpiexec -n 4 python -m mpi4py -m portnn train --distributed`` (``python -m mpi4py`` makes an exception
on one rank abort the whole job instead of leaving the others waiting in a collective). A rank that stalls without
raising still leaves the others waiting: bound the job with the launcher (MPICH: ``MPIEXEC_TIMEOUT=600 mpiexec ...``;
Open MPI: ``mpiexec --timeout 600 ...``).
"""

from .agreement import FIELDS, RanksDisagree, check_agreement, fingerprint
from .buffers import pack, shard, unpack, weight
from .communicator import MPI_HINT, Communicator, MPICommunicator, SingleProcess, communicator
from .data_parallel import DataParallel, broadcast, same_weights

__all__ = ["FIELDS", "MPI_HINT", "Communicator", "DataParallel", "MPICommunicator", "RanksDisagree", "SingleProcess",
           "broadcast", "check_agreement", "communicator", "fingerprint", "pack", "same_weights", "shard",
           "unpack", "weight"]
