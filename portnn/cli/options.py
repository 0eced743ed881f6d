"""argparse types shared by every sub-command: numbers are checked while the command line is parsed, so a bad value
is exit status 2 with a message naming the option, before any work."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..array.validation import COUNT, INDEX, NON_NEGATIVE, POSITIVE, Rule


def _parsed(text: str, parse: Callable[[str], Any], rule: Rule) -> Any:
    """``text`` parsed, then checked by ``rule`` (the library's own rules): argparse's error names the option."""
    try:
        return rule(parse(text), "value", "option")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {rule.describe()}, got {text!r}") from None


def _int(text: str, low: int) -> int:
    return int(_parsed(text, int, COUNT if low == 1 else INDEX))


def count(n: int, noun: str) -> str:
    """'1 epoch', '2 epochs': ``n`` and ``noun``, plural unless n is 1."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def positive_int(text: str) -> int:
    """An integer >= 1 (batch sizes, parity epochs, repeats, thread counts)."""
    return _int(text, 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0 (seeds, train epochs, rows to print)."""
    return _int(text, 0)


def sample_shape(text: str) -> tuple[int, ...]:
    """One sample's shape without the batch axis, as positive ints separated by commas ('1,8,8'; export, summary)."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise argparse.ArgumentTypeError(f"must be positive ints separated by commas, e.g. 1,8,8; got {text!r}")
    return shape


def _float(text: str, zero: bool) -> float:
    return float(_parsed(text, float, NON_NEGATIVE if zero else POSITIVE))


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates)."""
    return _float(text, zero=False)


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (tolerances; 0 asks for exact equality)."""
    return _float(text, zero=True)


def add_threads(parser: argparse.ArgumentParser) -> None:
    """The ``--threads N`` option of train, predict and parity (bench has its own list of counts to compare)."""
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="intra-op CPU threads of the backend (default: at most the CPUs this process may use, "
                             "unless OMP_NUM_THREADS or the backend's own variable is set; see backends/*.toml)")


def add_compile(parser: argparse.ArgumentParser) -> None:
    """``--compile`` / ``--no-compile``: compile the step where the backend can, or never (default: where the backend
    file says it pays, ``backends/*.toml`` [compile])."""
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="compile the training step (jax.jit, torch.compile); default: where the backend file "
                             "says it pays (JAX), --no-compile: never. JAX's compiled programs are kept in "
                             "~/.cache/portnn/jax for the next run (PORTNN_COMPILE_CACHE=0: never)")


def compile_choice(args: argparse.Namespace) -> bool | str:
    """What ``--compile`` asks of ``fit(compile=...)``; ValueError (exit 2) before any work when the backend cannot
    compile, or when --compile meets --distributed."""
    if args.compile:
        from ..array import backends

        method = backends.get(args.backend).compile.get("method", "none")
        if method == "none":
            raise ValueError(f"--compile: backend {args.backend} does not compile (backends/{args.backend}.toml "
                             "[compile] method = 'none'); leave --compile out")
        if getattr(args, "distributed", False):
            raise ValueError("--compile: data-parallel training (--distributed) is not compiled; leave --compile out")
    return "auto" if args.compile is None else bool(args.compile)
