"""A NCCL communicator for CuPy models: gradients are summed on the GPUs, with no host round trip.

SKETCH, NOT RUN: it was written without a GPU and has never executed. The code path it plugs into
(``Communicator.device_buffers``: the flat gradient buffer stays a device array) is tested on the CPU with a fake
communicator over array-api-strict's ``device1``; the NCCL and CuPy calls themselves are unverified. Until a GPU
run checks it, train CuPy models with ``MPICommunicator``, which stages every buffer through host memory (the PyPI
MPI wheels are not CUDA-aware).

Bootstrap: MPI starts the processes; rank 0 draws the NCCL unique id and MPI broadcasts it; each rank binds to GPU
``rank % device count``. Host buffers (the small agreement and metric collectives) still go over MPI.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .distributed import Communicator, MPICommunicator


class NCCLCommunicator(Communicator):
    """Allreduce/broadcast of CuPy buffers with ``cupy.cuda.nccl`` (NumPy buffers go over MPI). Not run here."""

    device_buffers = True

    def __init__(self, mpi: MPICommunicator | None = None) -> None:
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as err:
            raise ImportError('NCCLCommunicator needs CuPy with NCCL: pip install "portnn[cupy,mpi]"') from err
        self.mpi = mpi or MPICommunicator()
        self.rank, self.size = self.mpi.rank, self.mpi.size
        self._cupy, self._nccl = cupy, nccl
        cupy.cuda.Device(self.rank % cupy.cuda.runtime.getDeviceCount()).use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = self.mpi.comm.bcast(uid, root=0)
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)

    def _nccl_dtype(self, buffer: Any) -> int:
        kinds = {np.dtype("float32"): self._nccl.NCCL_FLOAT32, np.dtype("float64"): self._nccl.NCCL_FLOAT64,
                 np.dtype("int64"): self._nccl.NCCL_INT64}
        if np.dtype(buffer.dtype) not in kinds:
            raise TypeError(f"NCCLCommunicator: unsupported dtype {buffer.dtype}; use float32, float64 or int64")
        return kinds[np.dtype(buffer.dtype)]

    def allreduce(self, buffer: Any) -> Any:
        if isinstance(buffer, np.ndarray):
            return self.mpi.allreduce(buffer)
        cp = self._cupy
        src = cp.ascontiguousarray(buffer)
        out = cp.empty_like(src)
        stream = cp.cuda.get_current_stream()
        self.comm.allReduce(src.data.ptr, out.data.ptr, src.size, self._nccl_dtype(src), self._nccl.NCCL_SUM,
                            stream.ptr)
        stream.synchronize()  # the result is read by the next step's finiteness check
        return out

    def broadcast(self, buffer: Any, root: int = 0) -> Any:
        if isinstance(buffer, np.ndarray):
            return self.mpi.broadcast(buffer, root)
        cp = self._cupy
        out = cp.array(buffer, copy=True)
        stream = cp.cuda.get_current_stream()
        self.comm.bcast(out.data.ptr, out.size, self._nccl_dtype(out), root, stream.ptr)
        stream.synchronize()
        return out

    def barrier(self) -> None:
        self._cupy.cuda.get_current_stream().synchronize()
        self.mpi.barrier()
