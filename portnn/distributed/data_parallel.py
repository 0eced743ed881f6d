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

from dataclasses import replace
from typing import Any

import array_api_compat

from ..array import host, tree
from ..array.types import Array, Params
from ..nn.layer import Sync
from ..train.plan import Plan
from ..train.state import TrainingState
from ..train.step import Step
from .agreement import check_agreement, fingerprint
from .buffers import host_dtype, pack, shard, unpack, weight
from .communicator import Communicator


class DataParallel:
    """The data-parallel strategy of one ``fit`` over ``comm`` (``portnn.train.parallel.Parallel``)."""

    def __init__(self, comm: Communicator) -> None:
        self.comm = comm

    def begin(self, net: Any, s: TrainingState, data: tuple[Array, Array], plan: Plan) -> TrainingState:
        """On every rank: check that all ranks train alike (RanksDisagree otherwise); the state with rank 0's
        parameters, layer state and optimizer state."""
        comm = self.comm
        if comm.size > 1 and any(s.state):  # batch statistics are the global batch's: every rank needs rows
            n, size = plan.n, plan.size
            smallest = min(size, n - (plan.per_epoch - 1) * size)
            if smallest < comm.size:
                stateful = [repr(net.layers[i]) for i, layer in enumerate(s.state) if layer]
                raise ValueError(f"fit: data-parallel training of layers with batch statistics ({', '.join(stateful)}) "
                                 f"needs at least one row per rank in every batch, but with {n} rows in batches of "
                                 f"{size} a batch has {smallest} rows for {comm.size} ranks; choose a batch size "
                                 "whose last batch is not smaller than the number of ranks")
        if comm.size > 1:  # a group of one has nobody to disagree with (and skips hashing the data)
            check_agreement(comm, fingerprint(net, data, batch_size=plan.size, epochs=plan.epochs,
                                              shuffle=plan.seed is not None, steps=plan.steps, state=s))
        return broadcast(s, net.placement, comm)

    def local(self, step: Step, params: Params, state: Params, x: Array, y: Array, key: tuple[Any, Any],
              host_call: Any = None) -> tuple[Array, Params, Array, Array]:
        """This rank's rows of the global batch (x, y): (its gradients and loss, weighted into the global batch's
        and packed into one flat buffer, the new state, its output, its targets). Pure, so it compiles."""
        comm, p = self.comm, step.training
        rows = x.shape[0]
        lo, hi = shard(rows, comm.rank, comm.size)
        x_local, y_local = x[lo:hi, ...], y[lo:hi, ...]
        if hi <= lo:  # no rows here: contribute zeros (a mean over no rows would be NaN)
            out, _ = step.forward(params, state, x_local, key, rows=(lo, hi, rows))
            return p.xp.zeros((tree.size(params) + 1,), dtype=p.dtype, device=p.device), state, out, y_local
        w = weight(step.loss, hi - lo, rows)
        sync = self._sync(step, w, host_call) if step.stateful and comm.size > 1 else None
        value, grads, state, out = step.gradients(params, state, x_local, y_local, key, rows=(lo, hi, rows), sync=sync)
        ordered = tree.leaves(tree.map(lambda _p, g: g, params, grads))  # the parameters' order
        packed = pack([*ordered, p.xp.reshape(value, (1,))], p.xp)
        return (packed * w if w != 1.0 else packed), state, out, y_local

    def reduce(self, packed: Array) -> Array:
        """Every rank's buffer summed by one Allreduce: on the device buffer where the communicator can, else staged
        through one host copy each way."""
        if self.comm.device_buffers:
            return self.comm.allreduce(packed)
        xp = array_api_compat.array_namespace(packed)
        total = self.comm.allreduce(host.to_numpy(packed))
        return host.from_numpy(total, xp, device=array_api_compat.device(packed), dtype=packed.dtype)

    def unpack(self, total: Array, params: Params, step: Step) -> tuple[Array, Params]:
        """(global-batch loss, global-batch gradients) from the summed buffer."""
        p = step.training
        return total[-1], unpack(total[:-1], params, p.xp, p.device, p.dtype)

    def _sync(self, step: Step, w: float, host_call: Any) -> Sync:
        """Batch statistics of the global batch for BatchNorm (SyncBatchNorm's behaviour): each call sums one
        array over the ranks through one Allreduce (from inside a compiled step through ``host_call``)."""
        comm, p = self.comm, step.training

        def summed(values: Any) -> Any:  # a host array -> its sum over ranks, same shape
            return host.shaped(comm.allreduce(host.flat([values], host_dtype(p))), tuple(values.shape))

        def total(a: Array) -> Array:
            if host_call is not None:
                return host_call(summed, a)
            if comm.device_buffers:
                return p.xp.reshape(comm.allreduce(p.xp.reshape(a, (-1,))), a.shape)
            flat = comm.allreduce(host.flat([a], host_dtype(p)))  # a buffer of our own: allreduce may reuse it
            return p.xp.reshape(host.from_numpy(flat, p.xp, device=p.device, dtype=a.dtype), a.shape)

        return Sync(total, w)

    def sum_counts(self, counts: dict[str, float]) -> dict[str, float]:
        """Per-rank metric counts summed over ranks (one small Allreduce)."""
        if not counts:
            return counts
        total = self.comm.allreduce(host.values(list(counts.values()), "float64"))
        return dict(zip(counts, (float(v) for v in total), strict=True))


def broadcast(s: TrainingState, p: Any, comm: Communicator) -> TrainingState:
    """``s`` with rank 0's parameters, layer state and optimizer-state trees (one broadcast of a flat buffer;
    counters such as Adam's step were checked equal by the agreement)."""
    trees = [s.params, s.state] + [v for v in s.optimizer_state.values() if isinstance(v, list)]
    leaves = tree.leaves(trees)
    if not leaves:
        return s
    if comm.device_buffers:
        buffer = pack([p.xp.astype(a, p.dtype) for a in leaves], p.xp)
    else:  # one host copy per array: this runs once per fit
        buffer = host.flat(leaves, host_dtype(p))
    placed = comm.broadcast(buffer)
    start, out = 0, []
    for part in trees:
        size = tree.size(part)
        out.append(unpack(placed[start:start + size], part, p.xp, p.device, p.dtype))
        start += size
    slots = iter(out[2:])
    opt = {k: next(slots) if isinstance(v, list) else v for k, v in s.optimizer_state.items()}
    return replace(s, params=out[0], state=out[1], optimizer_state=opt)


def same_weights(net: Any, comm: Communicator) -> bool:
    """True on every rank when all ranks hold bit-identical parameters (rank 0's broadcast and compared)."""
    params = [a for layer in net.params for a in layer.values()]
    mine = host.flat(params, host_dtype(net.placement))
    differs = int(not host.same_bits(mine, comm.broadcast(mine)))
    return int(comm.allreduce(host.values([differs], "int64"))[0]) == 0
