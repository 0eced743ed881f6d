"""Synchronous data-parallel training: every rank holds the whole data set and the same weights, takes its rows of
each global batch, and one Allreduce of a flat host buffer sums the weighted gradients (and the loss) of all ranks.

Launch with ``mpiexec -n 4 python -m mpi4py -m portnn train --distributed`` (``python -m mpi4py`` makes an exception
on one rank abort the whole job instead of leaving the others waiting in a collective).

Arrays on any backend/device are staged through host NumPy buffers (``portnn.host``): one device-to-host and one
host-to-device copy of the flat gradient buffer per step. The PyPI MPI wheels are built without CUDA, so this is
also the CuPy path; a NCCL communicator for GPUs is sketched in ``portnn.distributed_nccl`` (not run here).

Why the result equals single-process training with the same global batch: the global batch sequence is unchanged
(same shuffle keyed by (seed, epoch), same batch size); rank r takes rows ``shard(n, r, R)``; a mean-reduction loss
weights its local gradient and loss by local_rows / global_rows, a sum-reduction loss (SSE) by 1, so the sum over
ranks is the global-batch gradient up to floating-point summation order. Every rank then applies the same update
to the same weights, so the weights stay bit-identical across ranks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import host

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

    def barrier(self) -> None:
        """Return once every rank has called it."""
        raise NotImplementedError

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


# ---- sharding and the flat buffer --------------------------------------------------------------------------
def shard(rows: int, rank: int, size: int) -> tuple[int, int]:
    """Rows [lo, hi) of a global batch of ``rows`` that ``rank`` of ``size`` takes: contiguous, in rank order, sizes
    differing by at most one (the first rows % size ranks take one more, as numpy.array_split); the last ranks get
    none when rows < size."""
    if size < 1 or not 0 <= rank < size or rows < 0:
        raise ValueError(f"shard: need 0 <= rank < size and rows >= 0, got rows={rows}, rank={rank}, size={size}")
    base, extra = divmod(rows, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def weight(loss: Any, local_rows: int, global_rows: int) -> float:
    """Factor on a rank's gradient and loss so that their sum over ranks is the global batch's: local/global rows
    for a mean-reduction loss, 1 for a sum-reduction loss (SSE), 0 for a rank without rows."""
    if local_rows == 0:
        return 0.0
    return 1.0 if loss.reduction == "sum" else local_rows / global_rows


def pack(arrays: list[Any], xp: Any, *, to_host: bool = True) -> Any:
    """``arrays`` (same namespace and dtype) flattened and joined, shape (sum of sizes,): one host copy, or the
    device array itself when ``to_host`` is False."""
    flat = xp.concat([xp.reshape(a, (-1,)) for a in arrays], axis=0)
    return host.to_numpy(flat) if to_host else flat


def unpack(buffer: Any, like: dict[Any, Any], xp: Any, device: Any, dtype: Any) -> dict[Any, Any]:
    """Inverse of ``pack``: arrays shaped as ``like``'s values, keyed as ``like``, on ``device`` (one host copy in
    when ``buffer`` is a host array)."""
    flat = host.from_numpy(buffer, xp, device=device, dtype=dtype) if isinstance(buffer, np.ndarray) else buffer
    out, start = {}, 0
    for key, a in like.items():
        shape = tuple(a.shape)
        count = math.prod(shape)
        out[key] = xp.reshape(flat[start:start + count], shape)
        start += count
    if start != buffer.shape[0]:
        raise ValueError(f"unpack: buffer has {buffer.shape[0]} values, the parameters need {start}")
    return out


def host_dtype(placement: Any) -> np.dtype:
    """The NumPy dtype of a placement's float dtype."""
    return np.dtype(placement.dtype_name)


# ---- the pieces Sequential.fit calls with a communicator -----------------------------------------------------
def agree(comm: Communicator, where: str, **values: int) -> None:
    """Raise ValueError on every rank (so none waits in a collective) unless all ranks hold the same ``values``."""
    names = list(values)
    mine = np.array([int(values[k]) for k in names], dtype=np.int64)
    root = comm.broadcast(mine)
    differs = comm.allreduce(np.array([int(not np.array_equal(mine, root))], dtype=np.int64))
    if differs[0]:
        raise ValueError(f"{where}: the {comm.size} ranks disagree on {', '.join(names)} "
                         f"(rank 0: {root.tolist()}, rank {comm.rank}: {mine.tolist()}); {differs[0]} rank(s) "
                         "differ: every rank must call fit with the same data and arguments")


def start(net: Any, comm: Communicator, *, data: tuple[Any, Any], rows: int, batch_size: int, epochs: int,
          shuffle: bool) -> None:
    """At the start of ``fit`` on every rank: check that all ranks train alike (same rows, batch size, epochs,
    shuffle and its seed, epoch, parameter count and dtype), then give every rank rank 0's weights."""
    del data  # (X, y) as fit placed them: compared across ranks by the agreement check (issue 11)
    params = net.parameters().values()
    agree(comm, "fit", rows=rows, batch_size=batch_size, epochs=epochs, shuffle=int(shuffle), epoch=net.epoch,
          shuffle_seed=net.seed if net.shuffle_seed is None else net.shuffle_seed,
          parameters=sum(math.prod(tuple(a.shape)) for a in params), float64=int(net.placement.dtype_name == "float64"))
    broadcast_state(net, comm)


def broadcast_state(net: Any, comm: Communicator) -> None:
    """Give every rank rank 0's parameters and optimizer state arrays (one broadcast of a flat host buffer)."""
    p = net.placement
    params = net.parameters()
    slots = {(k, s): a for k, state in net.optimizer_state.items() for s, a in state.items() if not isinstance(a, int)}
    arrays = {**{("param", k): a for k, a in params.items()}, **{("state", k): a for k, a in slots.items()}}
    if not arrays:
        return
    if comm.device_buffers:
        buffer = pack([p.xp.astype(a, p.dtype) for a in arrays.values()], p.xp, to_host=False)
    else:  # one host copy per array: this runs once per fit
        buffer = np.concatenate([host.to_numpy(a).reshape(-1).astype(host_dtype(p), copy=False)
                                 for a in arrays.values()])
    placed = unpack(comm.broadcast(buffer), arrays, p.xp, p.device, p.dtype)
    net._set_parameters({k: placed[("param", k)] for k in params})
    if slots:
        net.optimizer_state = {k: {s: placed.get(("state", (k, s)), a) for s, a in state.items()}
                               for k, state in net.optimizer_state.items()}


def gradients(net: Any, xb: Any, yb: Any, xp: Any, batch: int, comm: Communicator) -> tuple[float, Any, Any, dict]:
    """Forward and backward on this rank's rows of the global batch (xb, yb), then one Allreduce of gradients and
    loss. Returns (global-batch loss, this rank's output, this rank's targets, global-batch gradients by key)."""
    rows = xb.shape[0]
    lo, hi = shard(rows, comm.rank, comm.size)
    x_local, y_local = xb[lo:hi, ...], yb[lo:hi, ...]
    params, loss, p = net.parameters(), net.loss, net.placement
    for layer in net.layers:  # host randomness (Dropout) is drawn for the global batch, then sliced
        layer.training_rows = (lo, hi, rows)
    try:
        out = net._forward(x_local, xp, batch)
    finally:
        for layer in net.layers:
            layer.training_rows = None
    on_device = comm.device_buffers
    if hi > lo:
        value = loss.forward(out, y_local, xp)
        net._backward(loss.backward(xp), xp)
        grads = net.gradients()
        local = pack([grads[k] for k in params] + [xp.reshape(value, (1,))], xp, to_host=not on_device)
        w = weight(loss, hi - lo, rows)
        if w != 1.0 and on_device:
            local = local * w
        elif w != 1.0:
            local *= w  # our own host copy; in its dtype (float32 stays float32)
    else:  # no rows here: contribute zeros (a mean over no rows would be NaN)
        count = sum(math.prod(tuple(a.shape)) for a in params.values()) + 1
        local = (xp.zeros(count, dtype=p.dtype, device=p.device) if on_device
                 else np.zeros(count, dtype=host_dtype(p)))
    total = comm.allreduce(local)
    return host.to_float(total[-1]), out, y_local, unpack(total[:-1], params, xp, p.device, p.dtype)


def sum_counts(counts: dict[str, float], comm: Communicator) -> dict[str, float]:
    """Per-rank metric counts summed over ranks (one small Allreduce)."""
    if not counts:
        return counts
    total = comm.allreduce(np.array(list(counts.values()), dtype=np.float64))
    return dict(zip(counts, (float(v) for v in total), strict=True))


def same_weights(net: Any, comm: Communicator) -> bool:
    """True on every rank when all ranks hold bit-identical parameters (rank 0's broadcast and compared)."""
    params = list(net.parameters().values())
    mine = (np.concatenate([host.to_numpy(a).reshape(-1) for a in params]) if params else np.zeros(0))
    root = comm.broadcast(mine)
    bits = np.dtype(f"u{mine.dtype.itemsize}")
    differs = int(not np.array_equal(mine.view(bits), root.view(bits)))
    return int(comm.allreduce(np.array([differs], dtype=np.int64))[0]) == 0
