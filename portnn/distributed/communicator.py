"""Communicators: a group of processes that sum and broadcast flat host buffers (MPI through mpi4py, or a group of
one). The PyPI MPI wheels are built without CUDA, so GPU arrays are staged through host memory (``portnn.array.host``);
a communicator with ``device_buffers = True`` takes device arrays directly."""

from __future__ import annotations

from typing import Any

import numpy as np

MPI_HINT = 'distributed training over MPI needs mpi4py and an MPI library: pip install "portnn[mpi]"'


class Communicator:
    """A group of ``size`` processes; this one is ``rank``. Buffers are 1-D contiguous host NumPy arrays; a
    communicator with ``device_buffers = True`` (NCCL) also takes 1-D arrays of the model's namespace and device, and
    then receives the gradient buffer without the host round trip."""

    rank: int = 0
    size: int = 1
    device_buffers: bool = False

    def allreduce(self, buffer: np.ndarray) -> np.ndarray:
        """The elementwise sum of ``buffer`` over all ranks, bit-identical on every rank. It may be computed in
        ``buffer``'s memory (no allocation per step), so callers pass a buffer they own and do not reuse it."""
        raise NotImplementedError

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> np.ndarray:
        """A new array holding rank ``root``'s ``buffer`` (same shape and dtype on every rank)."""
        raise NotImplementedError

    def allgather(self, buffer: np.ndarray) -> np.ndarray:
        """A new (size, length) array whose row r is rank r's ``buffer`` (same length and dtype on every rank),
        the same on every rank. This default takes one broadcast per rank; MPI does it in one collective."""
        buffer = _check_buffer(buffer, f"{type(self).__name__}.allgather")
        return np.stack([self.broadcast(buffer, root=r) for r in range(self.size)])

    def barrier(self) -> None:
        """Return once every rank has called it."""
        raise NotImplementedError

    def data_parallel(self) -> Any:
        """The strategy ``fit(communicator=self)`` trains with (``portnn.train.parallel.Parallel``)."""
        from .data_parallel import DataParallel

        return DataParallel(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class SingleProcess(Communicator):
    """The group of one process: the sum over one rank is the buffer itself; broadcast copies."""

    def allreduce(self, buffer: np.ndarray) -> np.ndarray:
        return buffer

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> np.ndarray:
        if root != 0:
            raise ValueError(f"SingleProcess.broadcast: root must be 0 in a group of one, got {root}")
        return np.array(buffer, copy=True)

    def allgather(self, buffer: np.ndarray) -> np.ndarray:
        return _check_buffer(buffer, "SingleProcess.allgather")[None, :].copy()

    def barrier(self) -> None:
        return None


class MPICommunicator(Communicator):
    """MPI through mpi4py (imported on first use), by default on ``MPI.COMM_WORLD``."""

    def __init__(self, comm: Any = None) -> None:
        try:
            from mpi4py import MPI
        except ImportError as err:
            raise ImportError(MPI_HINT) from err
        self._mpi = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = int(self.comm.Get_rank()), int(self.comm.Get_size())

    def allreduce(self, buffer: np.ndarray) -> np.ndarray:
        buffer = _check_buffer(buffer, "MPICommunicator.allreduce")
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)
        return buffer

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> np.ndarray:
        out = np.array(_check_buffer(buffer, "MPICommunicator.broadcast"), copy=True)
        self.comm.Bcast(out, root=root)
        return out

    def allgather(self, buffer: np.ndarray) -> np.ndarray:
        send = _check_buffer(buffer, "MPICommunicator.allgather")
        out = np.empty((self.size, send.shape[0]), dtype=send.dtype)
        self.comm.Allgather(send, out)
        return out

    def barrier(self) -> None:
        self.comm.Barrier()


def communicator(kind: str = "mpi") -> Communicator:
    """A communicator by name: 'mpi' (MPI.COMM_WORLD; a group of one without mpiexec) or 'single'."""
    if kind == "mpi":
        return MPICommunicator()
    if kind == "single":
        return SingleProcess()
    raise ValueError(f"communicator: kind must be 'mpi' or 'single', got {kind!r}")


def _check_buffer(buffer: Any, where: str) -> np.ndarray:
    if not isinstance(buffer, np.ndarray) or buffer.ndim != 1:
        raise TypeError(f"{where}: needs a 1-D host NumPy array, got {type(buffer).__name__} "
                        f"of shape {getattr(buffer, 'shape', None)}")
    return np.ascontiguousarray(buffer)
