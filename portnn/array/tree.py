"""The one walker over trees of arrays: parameters (a list with one {name: array} per layer), layer state, optimizer
state ({slot: tree or 0-d array}) and whole training states are nested dicts, lists and tuples whose leaves are
arrays. Every walk in portnn (finiteness checks, commits with ``where``, copies, flat buffers, readable names,
checkpoint keys) goes through these functions, as ``jax.tree`` does for JAX programs.

Flat names join the path with '.', so a parameter tree flattens to PyTorch's state_dict keys ('0.weight', and
'2.1.0.weight' inside nested ``Residual`` blocks, whose dicts already hold 'j.name' keys).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .types import Array, Device, Namespace


def _children(node: Any) -> Iterator[tuple[str, Any]] | None:
    if isinstance(node, dict):
        return ((str(k), v) for k, v in node.items())
    if isinstance(node, list | tuple):
        return ((str(i), v) for i, v in enumerate(node))
    return None


def items(tree: Any, prefix: str = "") -> Iterator[tuple[str, Array]]:
    """(flat name, leaf) of every leaf in order: '0.weight', 'm.0.weight', 'step'."""
    children = _children(tree)
    if children is None:
        yield prefix, tree
        return
    for key, child in children:
        yield from items(child, f"{prefix}.{key}" if prefix else key)


def leaves(*trees: Any) -> list[Array]:
    """Every leaf of ``trees``, in order."""
    return [leaf for tree in trees for _, leaf in items(tree)]


def flatten(tree: Any, prefix: str = "") -> dict[str, Array]:
    """{flat name: leaf} ('INDEX.NAME' for a parameter tree)."""
    return dict(items(tree, prefix))


def map(fn: Callable[..., Any], tree: Any, *others: Any) -> Any:
    """A tree of ``tree``'s structure whose leaves are ``fn(leaf, *matching leaves of others)``."""
    if isinstance(tree, dict):
        return {k: map(fn, v, *(o[k] for o in others)) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(map(fn, v, *(o[i] for o in others)) for i, v in enumerate(tree))
    return fn(tree, *others)


def unflatten(flat: dict[str, Any], like: Any, prefix: str = "") -> Any:
    """A tree shaped as ``like`` whose leaves are taken from ``flat`` by flat name (KeyError naming a missing one)."""
    if isinstance(like, dict):
        return {k: unflatten(flat, v, f"{prefix}.{k}" if prefix else str(k)) for k, v in like.items()}
    if isinstance(like, list | tuple):
        return type(like)(unflatten(flat, v, f"{prefix}.{i}" if prefix else str(i)) for i, v in enumerate(like))
    return flat[prefix]


def where(xp: Namespace, ok: Array, new: Any, old: Any) -> Any:
    """``new`` where the 0-d boolean ``ok`` holds, else ``old``, leaf by leaf: how a step commits an update only
    when it is finite, without a host read."""
    return map(lambda a, b: xp.where(ok, a, b), new, old)


def zeros_like(tree: Any, xp: Namespace, device: Device) -> Any:
    """A tree of zeros shaped, typed and placed like ``tree``."""
    return map(lambda a: xp.zeros(a.shape, dtype=a.dtype, device=device), tree)


def copy(tree: Any, xp: Namespace, device: Device) -> Any:
    """A copy of every leaf (so a tree shares no buffer with one a compiled call will donate)."""
    return map(lambda a: xp.asarray(a, dtype=a.dtype, device=device, copy=True), tree)


def size(tree: Any) -> int:
    """Number of values in the tree's leaves."""
    total = 0
    for leaf in leaves(tree):
        count = 1
        for d in leaf.shape:
            count *= int(d)
        total += count
    return total


def finite(xp: Namespace, device: Device, *trees: Any) -> Array:
    """A 0-d boolean array: every real floating leaf of ``trees`` is finite (no host read)."""
    ok = None
    for a in leaves(*trees):
        if xp.isdtype(a.dtype, "real floating"):
            flag = xp.all(xp.isfinite(a))
            ok = flag if ok is None else ok & flag
    return xp.asarray(True, dtype=xp.bool, device=device) if ok is None else ok
