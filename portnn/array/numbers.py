"""Hyper-parameters as Python floats, checked where they are set (layers, optimizers, schedules): a NumPy scalar
would silently promote float32 arithmetic to float64."""

from __future__ import annotations

import math
from typing import Any


def number(owner: str, name: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
           low_open: bool = False, high_open: bool = True) -> float:
    """``value`` as a Python float (never a NumPy scalar, which would promote float32), inside the given range."""
    if isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}") from err
    too_low = result <= low if low_open else result < low
    too_high = result >= high if high_open else result > high
    if not math.isfinite(result) or too_low or too_high:
        if low == -math.inf and high == math.inf:
            raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
        if high == math.inf:
            where = f"{'>' if low_open else '>='} {low:g}"
        else:
            where = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: {name} must be a finite number {where}, got {value!r}")
    return result


def positive(owner: str, name: str, value: Any) -> float:
    """``value`` as a finite Python float > 0."""
    return number(owner, name, value, 0.0, low_open=True)
