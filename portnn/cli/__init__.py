"""The ``portnn`` command: one sub-command per module of this package (each with ``add_parser(sub)`` and
``run(args) -> int``); ``options`` and ``paths`` hold what they share."""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
import warnings
from typing import Any

from .._version import __version__

COMMANDS = ("train", "predict", "export", "summary", "backends", "bench", "parity")
SIGPIPE_STATUS = 141  # 128 + SIGPIPE: what the shell reports for a command whose reader went away (`| head`)


class Parser(argparse.ArgumentParser):
    """argparse without its silent abbreviations (--ep was taken as --epochs)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)


def parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command line and its sub-command parsers by name (one per command module)."""
    main_parser = Parser(prog="portnn", description="A portable neural network on any Array API backend.")
    main_parser.add_argument("--version", action="version", version=f"portnn {__version__}")
    sub = main_parser.add_subparsers(dest="command", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"portnn.cli.{name}").add_parser(sub)
    return main_parser, dict(sub.choices)


def _hint(word: str, parser: argparse.ArgumentParser) -> str:
    """An unrecognised ``word`` with the option it likely meant: one it abbreviates, else the closest spelling."""
    if not word.startswith("-"):
        return word
    name = word.split("=")[0]
    options = [s for action in parser._actions for s in action.option_strings]
    close = [o for o in options if o.startswith(name)] or difflib.get_close_matches(name, options, n=1, cutoff=0.75)
    return f"{word} (did you mean {' or '.join(close)}?)" if close else word


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns the exit status (0, 1 for a failed check that the
    command reports, 2 for bad input, 141 when the reader of its output went away)."""
    cli, commands = parser()
    args, extras = cli.parse_known_args(argv)  # bad options and numbers: argparse's message and exit status 2
    if extras:  # said by the sub-command they were given to, with its usage
        where = commands.get(args.command, cli)
        where.error("unrecognized arguments: " + " ".join(_hint(word, where) for word in extras))
    if args.command is None:  # bare `portnn`: the help, as pip and git give it
        cli.print_help()
        return 0
    caught: list[warnings.WarningMessage] = []
    try:
        try:
            with warnings.catch_warnings(record=True) as caught:
                status = int(args.run(args) or 0)
        except BaseException:
            _reissue(caught, failed=True)
            raise
        _reissue(caught, failed=False)
        sys.stdout.flush()  # a reader that went away is found here, not at exit
        return status
    except BrokenPipeError:
        # `portnn train | head -3`: quiet, as Python's documentation recommends (its note on SIGPIPE): the rest
        # of the output goes nowhere, and the flush at exit finds nothing to complain about
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return SIGPIPE_STATUS
    except (ValueError, TypeError, RuntimeError, KeyError, FloatingPointError, ImportError, OSError) as err:
        # user errors (bad paths, files, data, backends; OSError names its path) in one line, no traceback;
        # anything else is a bug in portnn and keeps its traceback
        print(f"portnn {args.command}: error: {err}", file=sys.stderr)
        return 2


def _reissue(caught: list[warnings.WarningMessage], failed: bool) -> None:
    """Show the warnings a command gave, after it: on failure without NumPy's RuntimeWarnings (overflow, invalid
    value), which portnn's own one-line error explains, and which used to bury it."""
    for w in caught:
        if failed and issubclass(w.category, RuntimeWarning):
            continue
        warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
