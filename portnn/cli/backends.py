"""``portnn backends``: which backends and devices from ``backends/`` can run here."""

from __future__ import annotations

import argparse

from ..array import backends


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backends", help="list the backends and devices that can run here")
    p.set_defaults(run=run)


def run(_args: argparse.Namespace) -> int:
    rows = [("backend", "installed", "runnable devices", "declared devices", "requirement")]
    for b in backends.registry().values():
        runnable = backends.runnable_devices(b)
        rows.append((b.name, "yes" if b.installed() else "no", ", ".join(runnable) or "-",
                     ", ".join(b.devices + b.gpu_devices), b.requirement))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0
