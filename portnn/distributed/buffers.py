"""Sharding a global batch across ranks, and packing parameter trees into one flat buffer for one collective."""

from __future__ import annotations

import math
from typing import Any

from ..array import host, tree
from ..array.types import Array, Device, Namespace, Params


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


def pack(arrays: list[Array], xp: Namespace) -> Array:
    """``arrays`` (same namespace and dtype) flattened and joined on their device, shape (sum of sizes,)."""
    return xp.concat([xp.reshape(a, (-1,)) for a in arrays], axis=0)


def unpack(buffer: Any, like: Params, xp: Namespace, device: Device, dtype: Any) -> Params:
    """Inverse of ``pack`` for a parameter tree: arrays shaped as ``like``'s leaves, in its structure, on
    ``device`` (one host copy in when ``buffer`` is a host array)."""
    flat = host.from_numpy(buffer, xp, device=device, dtype=dtype) if host.is_host(buffer) else buffer
    if flat.shape[0] != tree.size(like):
        raise ValueError(f"unpack: buffer has {flat.shape[0]} values, the parameters need {tree.size(like)}")
    start = 0

    def take(a: Array) -> Array:
        nonlocal start
        count = math.prod(tuple(a.shape))
        start += count
        return xp.reshape(flat[start - count:start], tuple(a.shape))

    return tree.map(take, like)


def host_dtype(where: Any) -> str:
    """The NumPy dtype of the float dtype of a Placement or a Context (anything with ``xp`` and ``dtype``)."""
    return "float32" if where.dtype == where.xp.float32 else "float64"
