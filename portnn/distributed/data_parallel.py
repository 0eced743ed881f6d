"""Synchronous data-parallel training, plugged into ``fit(communicator=...)``: every rank holds the whole data set and
the same weights, computes the step's gradients on its rows of each global batch, and one Allreduce of a flat host
buffer sums the weighted gradients (and the loss) of all ranks; the update then runs identically everywhere.

Why the result equals single-process training with the same global batch: the global batch sequence is unchanged
(same shuffle keyed by (seed, epoch), same batch size); rank r takes rows ``shard(n, r, R)``; a mean-reduction loss
weights its local gradient and loss by local_rows / global_rows, a sum-reduction loss (SSE) by 1, so the sum over
ranks is the global-batch gradient up to floating-point summation order. Dropout masks are drawn for the global
batch and sliced (``ctx.rows``); BatchNorm normalises by the global batch's statistics (``ctx.sync``: two Allreduces
forward, one backward, per layer and step), as PyTorch's SyncBatchNorm, not DDP's per-rank default. Arrays on any
backend/device are staged through host NumPy buffers (``portnn.array.host``): one device-to-host and one host-to-
device copy of the flat buffer per step.
"""

from __future__ import annotations

from typing import Any

from ..array import host
from ..array.types import Array, Params
from ..nn.layer import Sync
from ..train.step import Step
from .agreement import check_agreement, fingerprint
from .buffers import host_dtype, pack, shard, tree_size, unpack, weight
from .communicator import Communicator


class DataParallel:
    """The data-parallel strategy of one ``fit`` over ``comm`` (``portnn.train.parallel.Parallel``)."""

    def __init__(self, comm: Communicator) -> None:
        self.comm = comm

    def begin(self, net: Any, data: tuple[Array, Array], *, batch_size: int, epochs: int, shuffle: bool,
              steps: int | None = None) -> None:
        """On every rank: check that all ranks train alike (RanksDisagree otherwise), then give every rank rank 0's
        parameters, layer state and optimizer state."""
        comm = self.comm
        if comm.size > 1 and any(net.state):  # batch statistics are the global batch's: every rank needs rows
            n = data[0].shape[0]
            smallest = min(batch_size, n - (-(-n // batch_size) - 1) * batch_size)
            if smallest < comm.size:
                stateful = [repr(net.layers[i]) for i, s in enumerate(net.state) if s]
                raise ValueError(f"fit: data-parallel training of layers with batch statistics ({', '.join(stateful)}) "
                                 f"needs at least one row per rank in every batch, but with {n} rows in batches of "
                                 f"{batch_size} a batch has {smallest} rows for {comm.size} ranks; choose a "
                                 "batch size whose last batch is not smaller than the number of ranks")
        if comm.size > 1:  # a group of one has nobody to disagree with (and skips hashing the data)
            check_agreement(comm, fingerprint(net, data, batch_size=batch_size, epochs=epochs, shuffle=shuffle,
                                              steps=steps))
        broadcast_state(net, comm)

    def gradients(self, step: Step, params: Params, state: Params, x: Array, y: Array,
                  key: tuple[int, int]) -> tuple[Any, Params, Params, Array, Array]:
        """Gradients on this rank's rows of the global batch (x, y), then one Allreduce of gradients and loss:
        (global-batch loss, global-batch gradients, state, this rank's output, this rank's targets)."""
        comm, p = self.comm, step.training
        rows = x.shape[0]
        lo, hi = shard(rows, comm.rank, comm.size)
        x_local, y_local = x[lo:hi, ...], y[lo:hi, ...]
        on_device = comm.device_buffers
        if hi > lo:
            sync = self._sync(step, weight(step.loss, hi - lo, rows)) if step.stateful and comm.size > 1 else None
            value, grads, state, out = step.gradients(params, state, x_local, y_local, key, rows=(lo, hi, rows),
                                                      sync=sync)
            leaves = [g for layer in grads for g in layer.values()]
            local = pack([*leaves, p.xp.reshape(value, (1,))], p.xp, to_host=not on_device)
            w = weight(step.loss, hi - lo, rows)
            if w != 1.0 and on_device:
                local = local * w
            elif w != 1.0:
                local *= w  # our own host copy; in its dtype (float32 stays float32)
        else:  # no rows here: contribute zeros (a mean over no rows would be NaN)
            out, _ = step.forward(params, state, x_local, key, rows=(lo, hi, rows))
            count = tree_size(params) + 1
            local = (p.xp.zeros(count, dtype=p.dtype, device=p.device) if on_device
                     else host.zeros(count, host_dtype(p)))
        total = comm.allreduce(local)
        return host.to_float(total[-1]), unpack(total[:-1], params, p.xp, p.device, p.dtype), state, out, y_local

    def _sync(self, step: Step, w: float) -> Sync:
        """Batch statistics of the global batch for BatchNorm (SyncBatchNorm's behaviour): each call sums one
        array over the ranks through one Allreduce."""
        comm, p = self.comm, step.training

        def total(a: Array) -> Array:
            flat = p.xp.reshape(a, (-1,))
            if comm.device_buffers:
                return p.xp.reshape(comm.allreduce(flat), a.shape)
            summed = comm.allreduce(host.flat([flat], host_dtype(p)))  # a buffer of our own: allreduce may reuse it
            return p.xp.reshape(host.from_numpy(summed, p.xp, device=p.device, dtype=a.dtype), a.shape)

        return Sync(total, w)

    def sum_counts(self, counts: dict[str, float]) -> dict[str, float]:
        """Per-rank metric counts summed over ranks (one small Allreduce)."""
        if not counts:
            return counts
        total = self.comm.allreduce(host.values(list(counts.values()), "float64"))
        return dict(zip(counts, (float(v) for v in total), strict=True))


def broadcast_state(net: Any, comm: Communicator) -> None:
    """Give every rank rank 0's parameters, layer state and optimizer-state trees (one broadcast of a flat host
    buffer; counters such as Adam's step were checked equal by the agreement)."""
    p = net.placement
    trees = [net.params, net.state] + [v for v in net.optimizer_state.values() if isinstance(v, list)]
    leaves = [a for tree in trees for layer in tree for a in layer.values()]
    if not leaves:
        return
    if comm.device_buffers:
        buffer = pack([p.xp.astype(a, p.dtype) for a in leaves], p.xp, to_host=False)
    else:  # one host copy per array: this runs once per fit
        buffer = host.flat(leaves, host_dtype(p))
    placed = comm.broadcast(buffer)
    start, out = 0, []
    for tree in trees:
        size = tree_size(tree)
        out.append(unpack(placed[start:start + size], tree, p.xp, p.device, p.dtype))
        start += size
    net.params, net.state = out[0], out[1]
    slots = iter(out[2:])
    net.optimizer_state = {k: next(slots) if isinstance(v, list) else v for k, v in net.optimizer_state.items()}


def same_weights(net: Any, comm: Communicator) -> bool:
    """True on every rank when all ranks hold bit-identical parameters (rank 0's broadcast and compared)."""
    params = [a for layer in net.params for a in layer.values()]
    mine = host.flat(params, host_dtype(net.placement))
    differs = int(not host.same_bits(mine, comm.broadcast(mine)))
    return int(comm.allreduce(host.values([differs], "int64"))[0]) == 0
