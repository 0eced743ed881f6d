"""The ``portnn`` command: one sub-command per module of this package (each with ``add_parser(sub)`` and
``run(args) -> int``); ``options`` and ``paths`` hold what they share."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("train", "predict", "export", "summary", "backends", "bench", "parity")


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="portnn", description="A portable neural network on any Array API backend.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"portnn.cli.{name}").add_parser(sub)
    args = parser.parse_args(argv)  # bad options and numbers: argparse's message and exit status 2
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError, RuntimeError, KeyError, FloatingPointError, ImportError, OSError) as err:
        # user errors (bad paths, files, data, backends; OSError names its path) in one line, no traceback;
        # anything else is a bug in portnn and keeps its traceback
        print(f"portnn {args.command}: error: {err}", file=sys.stderr)
        return 2
