"""Synchronous data-parallel training: every rank holds the whole data set and the same weights, takes its rows of
each global batch, and one Allreduce of a flat host buffer sums the weighted gradients (and the loss) of all ranks.

Launch with ``mpiexec -n 4 python -m mpi4py -m portnn train --distributed`` (``python -m mpi4py`` makes an exception
on one rank abort the whole job instead of leaving the others waiting in a collective). A rank that stalls without
raising (stopped, swapping, a dead node) still leaves the others waiting: bound the job with the launcher
(MPICH: ``MPIEXEC_TIMEOUT=600 mpiexec ...``; Open MPI: ``mpiexec --timeout 600 ...``).

At the start of every ``fit`` the ranks compare, in one Allgather of a small int64 vector, a 64-bit hash of each
thing that decides the result (``FIELDS``: the data, the architecture, the loss, the optimizer and its
hyper-parameters, batch size, epochs, seeds, ...); any difference raises ``RanksDisagree`` on every rank, naming
the first differing field and two ranks' values, before any weight is touched.

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

import hashlib
import json
import math
from typing import Any

import numpy as np

from . import host
from .placement import backend_name

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


# ---- agreement: every rank trains on the same data, model and arguments --------------------------------------
# The fields ``fingerprint`` describes, in the order they are checked: the first that differs is named, so causes
# come before their consequences (the dtype changes the data's bytes, a resumed epoch the optimizer's step).
FIELDS = ("backend", "dtype", "data", "architecture", "parameters", "loss", "optimizer", "metrics", "batch_size",
          "epochs", "shuffle", "shuffle_seed", "seed", "epoch", "optimizer_state")


class RanksDisagree(ValueError):
    """The ranks of a data-parallel ``fit`` were given different data, model or arguments; raised with the same
    message on every rank, so none is left waiting in a collective."""


def digest64(payload: bytes) -> int:
    """The first 8 bytes of ``payload``'s SHA-256 as a signed int64 (one slot of the gathered vector)."""
    return int.from_bytes(hashlib.sha256(payload).digest()[:8], "little", signed=True)


def canonical(value: Any) -> bytes:
    """``value`` as canonical JSON (sorted keys, exact float repr): equal bytes on every rank for equal values."""
    return json.dumps(value, sort_keys=True, default=repr).encode()


def call_text(obj: Any) -> str:
    """``Name(key=value, ...)`` of a layer, loss or optimizer from its type and ``config()``."""
    return f"{type(obj).__name__}({', '.join(f'{k}={v!r}' for k, v in obj.config().items())})"


def data_digest(arrays: dict[str, Any]) -> tuple[str, int]:
    """(readable summary, hash) of the named arrays' dtypes, shapes and bytes: one host copy of each non-NumPy
    array (NumPy arrays are read in place when contiguous)."""
    digest, parts = hashlib.sha256(), []
    for name, a in arrays.items():
        values = np.ascontiguousarray(a if isinstance(a, np.ndarray) else host.to_numpy(a))
        digest.update(canonical([name, values.dtype.str, list(values.shape)]))
        digest.update(memoryview(values).cast("B"))
        with np.errstate(all="ignore"):  # the mean is only shown, never compared
            mean = f"mean {float(np.mean(values, dtype=np.float64)):.6g}" if values.size else "empty"
        parts.append(f"{name} {values.dtype} {tuple(values.shape)} {mean}")
    full = digest.digest()
    return f"{', '.join(parts)}, sha256 {full.hex()[:16]}", int.from_bytes(full[:8], "little", signed=True)


def state_summary(state: dict[Any, dict[str, Any]]) -> tuple[str, Any]:
    """(readable, canonical) of an optimizer state's slots and integer counters (Adam's step) per parameter; the
    slot arrays themselves are broadcast from rank 0, so only their presence must agree."""
    if not state:
        return "none", {}
    canon = {f"{i}.{name}": {s: v if isinstance(v, int) else "array" for s, v in entry.items()}
             for (i, name), entry in state.items()}
    slots = sorted({s for entry in state.values() for s in entry})
    counters: dict[str, set[int]] = {}
    for entry in canon.values():
        for s, v in entry.items():
            if v != "array":
                counters.setdefault(s, set()).add(v)
    shown = "".join(f"; {s} {min(v)}" + (f"..{max(v)}" if len(v) > 1 else "") for s, v in sorted(counters.items()))
    return f"{', '.join(slots)} of {len(state)} parameters{shown}", canon


def fingerprint(net: Any, data: tuple[Any, Any], *, batch_size: int, epochs: int,
                shuffle: bool) -> dict[str, tuple[str, int]]:
    """Per field of ``FIELDS``: (readable value, 64-bit hash) of what decides this rank's training."""
    p = net.placement
    count = sum(math.prod(tuple(a.shape)) for a in net.parameters().values())
    shuffle_seed = net.seed if net.shuffle_seed is None else net.shuffle_seed
    texts: dict[str, tuple[str, Any]] = {
        "architecture": (" -> ".join(call_text(layer) for layer in net.layers),
                         [[type(layer).__name__, layer.config()] for layer in net.layers]),
        "parameters": (str(count), count),
        "backend": (backend_name(p.xp), backend_name(p.xp)),
        "dtype": (p.dtype_name, p.dtype_name),
        "loss": (call_text(net.loss), [type(net.loss).__name__, net.loss.config()]),
        "optimizer": (call_text(net.optimizer), [type(net.optimizer).__name__, net.optimizer.config()]),
        "metrics": (repr(list(net.metrics or [])), list(net.metrics or [])),
        "batch_size": (str(batch_size), int(batch_size)),
        "epochs": (str(epochs), int(epochs)),
        "shuffle": (str(bool(shuffle)), bool(shuffle)),
        "shuffle_seed": (str(shuffle_seed), int(shuffle_seed)),
        "seed": (str(net.seed), int(net.seed)),
        "epoch": (str(net.epoch), int(net.epoch)),
        "optimizer_state": state_summary(net.optimizer_state),
    }
    out = {"data": data_digest({"X": data[0], "y": data[1]})}
    out.update({field: (text, digest64(canonical([field, value]))) for field, (text, value) in texts.items()})
    return {field: out[field] for field in FIELDS}


def check_agreement(comm: Communicator, fields: dict[str, tuple[str, int]], where: str = "fit") -> None:
    """Raise RanksDisagree, with the same message on every rank, unless all ranks hold the same hashes: one
    Allgather of (hashes, text lengths); on a difference, two broadcasts of the first differing field's text."""
    names = list(fields)
    texts = [fields[k][0].encode() for k in names]
    mine = np.array([fields[k][1] for k in names] + [len(t) for t in texts], dtype=np.int64)
    table = comm.allgather(mine)
    hashes, lengths = table[:, :len(names)], table[:, len(names):]
    differing = np.flatnonzero((hashes != hashes[0]).any(axis=0))
    if differing.size == 0:
        return
    f = int(differing[0])
    others = np.flatnonzero(hashes[:, f] != hashes[0, f])
    b = int(others[0])
    first, second = (shared_text(comm, texts[f], int(lengths[r, f]), r) for r in (0, b))
    first, second = clip(first, second)
    also = [names[i] for i in differing[1:]]
    raise RanksDisagree(
        f"{where}: the {comm.size} ranks disagree on {names[f]}: rank 0: {first}; rank {b}: {second} "
        f"({others.size} of {comm.size} ranks differ from rank 0"
        + (f"; they also disagree on {', '.join(also)}" if also else "")
        + f"). Every rank must call {where} with the same data, model and arguments")


def shared_text(comm: Communicator, text: bytes, length: int, root: int) -> str:
    """Rank ``root``'s ``text`` (``length`` bytes, known to every rank) on every rank, by one broadcast."""
    if length == 0:
        return ""
    mine = np.frombuffer(text, dtype=np.uint8).copy() if comm.rank == root else np.zeros(length, dtype=np.uint8)
    return comm.broadcast(mine, root=root).tobytes().decode(errors="replace")


def clip(a: str, b: str, width: int = 240) -> tuple[str, str]:
    """Two long texts cut to ``width`` characters around where they first differ."""
    if len(a) <= width and len(b) <= width:
        return a, b
    same = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    lo = max(0, same - width // 4)

    def cut(s: str) -> str:
        return ("..." if lo else "") + s[lo:lo + width] + ("..." if len(s) > lo + width else "")

    return cut(a), cut(b)


# ---- the pieces Sequential.fit calls with a communicator -----------------------------------------------------
def start(net: Any, comm: Communicator, *, data: tuple[Any, Any], rows: int, batch_size: int, epochs: int,
          shuffle: bool) -> None:
    """At the start of ``fit`` on every rank: check that all ranks train alike (``check_agreement`` on
    ``fingerprint``; raises RanksDisagree on every rank otherwise), then give every rank rank 0's weights."""
    del rows  # X's row count: part of the data digest
    if comm.size > 1:  # a group of one has nobody to disagree with (and skips hashing the data)
        check_agreement(comm, fingerprint(net, data, batch_size=batch_size, epochs=epochs, shuffle=shuffle))
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
