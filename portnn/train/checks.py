"""Argument and data checks shared by ``fit``, ``predict`` and ``evaluate``: each raises before any work is done,
naming the argument and what is wrong with it (its shape, dtype or offending values)."""

from __future__ import annotations

from typing import Any

from ..array import host
from ..array.placement import dtype_label

REAL_KINDS = ("bool", "integral", "real floating")


def real_dtype(x: Any, name: str, where: str, xp: Any) -> None:
    """``x`` must hold real numbers (bool, integer or real float): not complex, strings, dates or objects."""
    try:
        real = xp.isdtype(x.dtype, REAL_KINDS)
    except (TypeError, ValueError):
        real = False
    if not real:
        raise TypeError(f"{where}: {name} has dtype {dtype_label(x.dtype)}; portnn computes on real numbers "
                        "(bool, integer or real floating arrays), convert it first")


def has_rows(x: Any, name: str, where: str) -> None:
    """``x`` must have a batch axis with at least one row."""
    if x.ndim == 0:
        raise ValueError(f"{where}: {name} is a scalar; it needs a batch axis (one row per sample)")
    if x.shape[0] == 0:
        raise ValueError(f"{where}: {name} has shape {tuple(x.shape)}: no rows (samples), nothing to compute on")


def finite(x: Any, name: str, where: str, xp: Any) -> None:
    """A float ``x`` must hold no nan or inf. One pass and no temporary as large as ``x``: its sum is finite unless
    some value is nan or inf or the sum overflowed, which the min and max (nan-propagating in the standard) then
    tell apart; the rows are found only on failure."""
    if not xp.isdtype(x.dtype, "real floating") or host.to_bool(xp.isfinite(xp.sum(x))):
        return
    if host.to_bool(xp.isfinite(xp.min(x)) & xp.isfinite(xp.max(x))):
        return
    axes = tuple(range(1, x.ndim))
    bad_rows = host.to_numpy(xp.any(~xp.isfinite(x), axis=axes) if axes else ~xp.isfinite(x)).nonzero()[0]
    raise ValueError(f"{where}: {name} has non-finite values (nan or inf) in {bad_rows.size} of {x.shape[0]} rows, "
                     f"the first in row {int(bad_rows[0])}; remove or impute them first")


def features(x: Any, name: str, where: str) -> None:
    """An input ``x`` has a batch axis and at least one more: (samples, features, ...)."""
    if x.ndim < 2:
        raise ValueError(f"{where}: {name} has shape {tuple(x.shape)}; it needs shape (samples, features, ...), one "
                         "row per sample (one feature: reshape it to (-1, 1); one sample: to (1, -1))")


def fits_dtype(x: Any, name: str, where: str, xp: Any, dtype: Any) -> None:
    """A float ``x`` holds no finite value beyond the largest of ``dtype`` (the model's, an ``xp`` dtype or its
    name), to which it will be cast: 1e300 would become inf in a float32 model. Two reductions, only when x's
    dtype is the wider; the rows are found only on failure."""
    dtype = getattr(xp, dtype) if isinstance(dtype, str) else dtype
    if not xp.isdtype(x.dtype, "real floating") or float(xp.finfo(x.dtype).max) <= float(xp.finfo(dtype).max):
        return
    limit = float(xp.finfo(dtype).max)
    largest = max(host.to_float(xp.max(x)), -host.to_float(xp.min(x)))
    if largest <= limit:
        return
    axes = tuple(range(1, x.ndim))
    beyond = xp.abs(x) > limit
    bad_rows = host.to_numpy(xp.any(beyond, axis=axes) if axes else beyond).nonzero()[0]
    raise ValueError(f"{where}: {name} holds values as large as {largest:.4g} in {bad_rows.size} of {x.shape[0]} rows, "
                     f"the first in row {int(bad_rows[0])}, beyond the model's {dtype_label(dtype)} range (at most "
                     f"{limit:.4g}): they would become inf; scale the data, or use a float64 model")


def data(arrays: dict[str, Any], where: str, xp: Any, dtype: Any = None) -> None:
    """Every named array holds real, finite numbers in at least one row; with ``dtype`` (the model's float dtype,
    an ``xp`` dtype or its name) also none too large for it."""
    for name, x in arrays.items():
        real_dtype(x, name, where, xp)
        has_rows(x, name, where)
    for name, x in arrays.items():
        finite(x, name, where, xp)
        if dtype is not None:
            fits_dtype(x, name, where, xp, dtype)

