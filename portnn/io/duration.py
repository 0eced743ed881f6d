"""Times as people read them (µs, ms, s, min by size), the one formatter for train, bench and parity output."""

from __future__ import annotations

import math

UNITS = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6))


def format_duration(seconds: float) -> str:
    """``seconds`` to three significant digits in the unit that fits: '71.2 µs', '110 ms', '4.42 s', '5 min 22 s'."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"format_duration: expected a finite number of seconds >= 0, got {seconds!r}")
    rounded = float(f"{seconds:.3g}")
    if rounded >= 60:
        minutes, rest = divmod(round(seconds), 60)
        if minutes >= 60:
            return f"{minutes // 60} h {minutes % 60} min"
        return f"{minutes} min {rest} s"
    for unit, scale in UNITS:
        if rounded >= scale:
            return f"{rounded / scale:.3g} {unit}"
    return f"{rounded / 1e-6:.3g} µs"
