"""Sharding a global batch across ranks, and packing parameter trees into one flat buffer for one collective."""

from __future__ import annotations

import math
from typing import Any

from ..array import host
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


def pack(arrays: list[Array], xp: Namespace, *, to_host: bool = True) -> Any:
    """``arrays`` (same namespace and dtype) flattened and joined, shape (sum of sizes,): one host copy, or the
    device array itself when ``to_host`` is False."""
    flat = xp.concat([xp.reshape(a, (-1,)) for a in arrays], axis=0)
    return host.to_numpy(flat) if to_host else flat


def unpack(buffer: Any, like: Params, xp: Namespace, device: Device, dtype: Any) -> Params:
    """Inverse of ``pack`` for a parameter tree: arrays shaped as ``like``'s leaves, in its structure, on
    ``device`` (one host copy in when ``buffer`` is a host array)."""
    flat = host.from_numpy(buffer, xp, device=device, dtype=dtype) if host.is_host(buffer) else buffer
    out, start = [], 0
    for layer in like:
        placed = {}
        for name, a in layer.items():
            shape = tuple(a.shape)
            count = math.prod(shape)
            placed[name] = xp.reshape(flat[start:start + count], shape)
            start += count
        out.append(placed)
    if start != buffer.shape[0]:
        raise ValueError(f"unpack: buffer has {buffer.shape[0]} values, the parameters need {start}")
    return out


def tree_size(tree: Params) -> int:
    """Number of values in a parameter tree."""
    return sum(math.prod(tuple(a.shape)) for layer in tree for a in layer.values())


def host_dtype(where: Any) -> str:
    """The NumPy dtype of the float dtype of a Placement or a Context (anything with ``xp`` and ``dtype``)."""
    return "float32" if where.dtype == where.xp.float32 else "float64"
