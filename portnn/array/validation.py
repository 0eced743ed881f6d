"""The one place that checks arguments: integers, numbers, booleans, choices and optional values, with ranges.

A rule is called as ``rule(value, name, owner)`` and returns the value in the type portnn computes with (a Python
int or float: a NumPy scalar would silently promote float32 arithmetic to float64), or raises naming the owner and
the argument: '{owner}: {name} must be {what}, got {value!r}'. A value of the wrong kind raises ``ArgumentTypeError``
(a TypeError that is also a ValueError, as scikit-learn's InvalidParameterError), one out of range a ValueError.

Classes whose configuration is set after construction (optimizers, schedules, layers) declare their rules once in
``constraints`` (as scikit-learn's ``_parameter_constraints``) and derive from ``Checked``: every assignment of a
declared attribute is checked, and ``_relations`` checks what involves several attributes.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong kind (a string for a number, 1 for True): both a TypeError and a ValueError."""


class Rule(Protocol):
    def __call__(self, value: Any, name: str, owner: str) -> Any: ...

    def describe(self) -> str: ...


def _fail(owner: str, name: str, what: str, value: Any, kind: type[Exception] = ValueError) -> Exception:
    return kind(f"{owner}: {name} must be {what}, got {value!r}")


@dataclass(frozen=True)
class Integer:
    """A Python int (NumPy integers accepted; bools, floats and strings refused) in [low, high]."""

    low: int | None = None
    high: int | None = None

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an int in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"an int >= {self.low}"
        return "an int" if self.high is None else f"an int <= {self.high}"

    def __call__(self, value: Any, name: str, owner: str) -> int:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise _fail(owner, name, self.describe(), value, ArgumentTypeError)
        result = operator.index(value)
        if (self.low is not None and result < self.low) or (self.high is not None and result > self.high):
            raise _fail(owner, name, self.describe(), value)
        return result


@dataclass(frozen=True)
class Number:
    """A finite Python float in the interval from ``low`` to ``high`` (closed at low and open at high by default)."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = True

    def describe(self) -> str:
        if self.low == -math.inf and self.high == math.inf:
            return "a finite number"
        if self.high == math.inf:
            return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        if self.low == -math.inf:
            return f"a finite number {'<' if self.high_open else '<='} {self.high:g}"
        return (f"a finite number in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")

    def __call__(self, value: Any, name: str, owner: str) -> float:
        if isinstance(value, bool | str | bytes):
            raise _fail(owner, name, "a number", value, ArgumentTypeError)
        try:
            result = float(value)
        except (TypeError, ValueError, OverflowError):
            raise _fail(owner, name, "a number", value, ArgumentTypeError) from None
        too_low = result <= self.low if self.low_open else result < self.low
        too_high = result >= self.high if self.high_open else result > self.high
        if not math.isfinite(result) or too_low or too_high:
            raise _fail(owner, name, self.describe(), value)
        return result


@dataclass(frozen=True)
class Boolean:
    """True or False themselves (1, 'no' and NumPy booleans are refused: a typo, not a choice)."""

    def describe(self) -> str:
        return "True or False"

    def __call__(self, value: Any, name: str, owner: str) -> bool:
        if value is not True and value is not False:
            raise _fail(owner, name, self.describe(), value, ArgumentTypeError)
        return value


class Choice:
    """One of ``options``, compared by type and value (True is not 1, so compile=1 is refused)."""

    def __init__(self, *options: Any) -> None:
        self.options = options

    def describe(self) -> str:
        return "one of " + ", ".join(map(repr, self.options))

    def __call__(self, value: Any, name: str, owner: str) -> Any:
        for option in self.options:
            if type(value) is type(option) and value == option:
                return option
        known = any(type(value) is type(option) for option in self.options)  # a wrong value, else a wrong kind
        raise _fail(owner, name, self.describe(), value, ValueError if known else ArgumentTypeError)


@dataclass(frozen=True)
class Optional:
    """None, or what ``rule`` accepts."""

    rule: Rule

    def describe(self) -> str:
        return f"{self.rule.describe()} or None"

    def __call__(self, value: Any, name: str, owner: str) -> Any:
        if value is None:
            return None
        try:
            return self.rule(value, name, owner)
        except ValueError as err:
            raise type(err)(f"{owner}: {name} must be {self.describe()}, got {value!r}") from None


class AnyOf:
    """What the first of ``rules`` that accepts the value returns (e.g. an int or 'auto')."""

    def __init__(self, *rules: Rule) -> None:
        self.rules = rules

    def describe(self) -> str:
        return " or ".join(rule.describe() for rule in self.rules)

    def __call__(self, value: Any, name: str, owner: str) -> Any:
        kinds = set()
        for rule in self.rules:
            try:
                return rule(value, name, owner)
            except ValueError as err:
                kinds.add(type(err))
        kind = ArgumentTypeError if ArgumentTypeError in kinds else ValueError
        raise _fail(owner, name, self.describe(), value, kind)


@dataclass(frozen=True)
class Pair:
    """A pair (tuple or list of two), each checked by ``rule``, returned as a tuple; ``what`` describes it."""

    rule: Rule
    what: str = "a pair"

    def describe(self) -> str:
        return self.what

    def __call__(self, value: Any, name: str, owner: str) -> tuple[Any, Any]:
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise _fail(owner, name, self.describe(), value, ArgumentTypeError)
        return (self.rule(value[0], f"{name}[0]", owner), self.rule(value[1], f"{name}[1]", owner))


@dataclass(frozen=True)
class Items:
    """A list or tuple whose every item ``rule`` accepts (each named ``name[i]``), returned as a tuple."""

    rule: Rule

    def describe(self) -> str:
        return f"a list of {self.rule.describe()}"

    def __call__(self, value: Any, name: str, owner: str) -> tuple[Any, ...]:
        if not isinstance(value, tuple | list):
            raise _fail(owner, name, self.describe(), value, ArgumentTypeError)
        return tuple(self.rule(item, f"{name}[{i}]", owner) for i, item in enumerate(value))


@dataclass(frozen=True)
class Function:
    """A callable (a progress callback, a layer factory)."""

    what: str = "a function"

    def describe(self) -> str:
        return self.what

    def __call__(self, value: Any, name: str, owner: str) -> Callable[..., Any]:
        if not callable(value):
            raise _fail(owner, name, self.describe(), value, ArgumentTypeError)
        return value


@dataclass(frozen=True)
class Instance:
    """An instance of ``cls`` (described as ``what``)."""

    cls: type | tuple[type, ...]
    what: str

    def describe(self) -> str:
        return self.what

    def __call__(self, value: Any, name: str, owner: str) -> Any:
        if not isinstance(value, self.cls):
            raise _fail(owner, name, self.describe(), value, ArgumentTypeError)
        return value


# the rules used most
FINITE = Number()
POSITIVE = Number(0.0, low_open=True)
NON_NEGATIVE = Number(0.0)
COUNT = Integer(1)  # sizes, widths, epochs of a schedule
INDEX = Integer(0)  # seeds, counters
FRACTION = Number(0.0, 1.0)  # [0, 1): momentum, dropout, betas
BOOLEAN = Boolean()


def check(value: Any, rule: Rule, name: str, owner: str) -> Any:
    """``rule(value, name, owner)``: the checked value (see the module docstring)."""
    return rule(value, name, owner)


class Checked:
    """Configuration objects whose attributes named in ``constraints`` are checked whenever they are set."""

    constraints: ClassVar[dict[str, Rule]] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        rule = type(self).constraints.get(name)
        if rule is None:
            object.__setattr__(self, name, value)
            return
        value = rule(value, name, type(self).__name__)
        missing = object()
        old = self.__dict__.get(name, missing)
        object.__setattr__(self, name, value)
        try:
            self._relations(name)
        except BaseException:
            if old is missing:
                object.__delattr__(self, name)
            else:
                object.__setattr__(self, name, old)
            raise

    def _relations(self, changed: str) -> None:
        """Checks across attributes, run after each checked assignment of ``changed`` (undone if one fails);
        attributes not set yet (during construction) are read with ``getattr(self, name, default)``."""
