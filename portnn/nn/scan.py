"""The one time loop of the recurrent layers: ``scan(ctx, body, carry, xs, length)`` with jax.lax.scan's meaning.

``body(carry, x_t) -> (carry, y_t)`` runs for t = 0 .. length-1 on the t-th slice of every array in ``xs`` along
its leading axis (``xs`` an array, a tuple/list of arrays, or None); the ``y_t`` come back stacked on a new leading
axis, with their tuple structure. When ``ctx.scan`` is set (a compiled trainer sets jax.lax.scan) the loop is one
compiled loop whose size does not grow with ``length``; otherwise it is a Python loop stacking with ``xp.stack``.
``reverse=True`` (backpropagation through time) runs t = length-1 .. 0: the inputs are flipped with ``xp.flip``
and the stacked outputs flipped back, so ``ys[t]`` still belongs to step t (jax.lax.scan's ``reverse``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..array import tree
from .layer import Context


def scan(ctx: Context, body: Callable[[Any, Any], tuple[Any, Any]], carry: Any, xs: Any, length: int,
         reverse: bool = False) -> tuple[Any, Any]:
    """(final carry, stacked ys) of ``body`` over the leading axis of ``xs`` (``length`` >= 1 steps)."""
    if reverse:
        carry, ys = scan(ctx, body, carry, _flip(ctx, xs), length)
        return carry, _flip(ctx, ys)
    if ctx.scan is not None:
        return ctx.scan(body, carry, xs, length)
    ys = []
    for t in range(length):
        carry, y = body(carry, tree.map(lambda a, t=t: None if a is None else a[t, ...], xs))
        ys.append(y)
    return carry, tree.map(lambda *steps: None if steps[0] is None else ctx.xp.stack(steps, axis=0), *ys)


def _flip(ctx: Context, xs: Any) -> Any:
    """Every array of ``xs`` reversed along its leading (time) axis."""
    return tree.map(lambda a: None if a is None else ctx.xp.flip(a, axis=0), xs)
