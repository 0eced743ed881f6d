"""The estimators' hyper-parameters checked at ``fit`` (sklearn's rule: the constructor only stores them), the default
network they describe and the optimizer they name."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np

from ..array.placement import FLOAT_DTYPES
from ..array.validation import AnyOf, Instance, Integer, Optional
from ..nn import ELU, GELU, Dense, Identity, Layer, LeakyReLU, ReLU, Sigmoid, SiLU, Tanh
from ..optim import SGD, Adam, Optimizer

# activation names: scikit-learn's MLP names first ('logistic' is the sigmoid), then portnn's own
ACTIVATIONS: dict[str, type[Layer]] = {"relu": ReLU, "tanh": Tanh, "logistic": Sigmoid, "identity": Identity,
                                       "sigmoid": Sigmoid, "leaky_relu": LeakyReLU, "elu": ELU, "gelu": GELU,
                                       "silu": SiLU}
OPTIMIZERS = ("adam", "sgd")
COMPILE = (True, False, "auto")
AUTO_BATCH = 200  # batch_size='auto' is min(200, n_samples), as MLPClassifier
# what scikit-learn's check_random_state seeds from (its 'random_state' constraint); bools are refused, as everywhere
RANDOM_STATE = Optional(AnyOf(Integer(0, 2**32 - 1), Instance(np.random.RandomState, "a numpy RandomState")))


@dataclass(frozen=True)
class Settings:
    """The estimator's parameters after checking, in the types portnn wants (tuples, Python floats and ints)."""

    layers: Callable[[int, int], Sequence[Layer]] | None
    hidden_layer_sizes: tuple[int, ...]
    activation: str
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    max_iter: int
    batch_size: int | None  # None: 'auto'
    shuffle: bool
    tol: float | None
    n_iter_no_change: int
    early_stopping: bool
    validation_fraction: float
    backend: str
    device: str | None
    dtype: str
    compile: bool | str
    verbose: int

    def batch(self, n_samples: int) -> int:
        """Rows per mini-batch for ``n_samples`` rows: 'auto' is min(200, n), a number is capped at n."""
        return min(AUTO_BATCH if self.batch_size is None else self.batch_size, n_samples)

    def network(self, n_features: int, n_outputs: int) -> list[Layer]:
        """The layers to train: ``layers(n_features, n_outputs)`` when given, else the MLP of ``hidden_layer_sizes``
        with ``activation`` after each hidden Dense layer and a linear output layer."""
        if self.layers is not None:
            built = self.layers(n_features, n_outputs)
            if not isinstance(built, list | tuple) or not all(isinstance(layer, Layer) for layer in built):
                raise TypeError(f"layers({n_features}, {n_outputs}) must return a list of portnn layers, got "
                                f"{built!r}")
            return list(built)
        network: list[Layer] = []
        width = n_features
        for size in self.hidden_layer_sizes:
            network += [Dense(width, size), ACTIVATIONS[self.activation]()]
            width = size
        return [*network, Dense(width, n_outputs)]

    def build_optimizer(self) -> Optimizer:
        """A fresh portnn optimizer of these hyper-parameters (it holds no state: the model keeps that)."""
        if self.optimizer == "sgd":
            return SGD(self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        return Adam(self.lr, weight_decay=self.weight_decay)


def _int(owner: str, name: str, value: Any, low: int) -> int:
    """``value`` as an int >= ``low`` (NumPy integers accepted, bools refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or operator.index(value) < low:
        raise ValueError(f"{owner}: {name} must be an int >= {low}, got {value!r}")
    return operator.index(value)


def _float(owner: str, name: str, value: Any, low: float, high: float = math.inf, *, open_low: bool = False,
           open_high: bool = True) -> float:
    """``value`` as a finite Python float in the interval (a NumPy scalar would turn float32 training float64)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < low or number > high \
            or (open_low and number == low) or (open_high and number == high):
        span = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise ValueError(f"{owner}: {name} must be a number in {span}, got {value!r}")
    return number


def _choice(owner: str, name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``, of the same type."""
    if not any(isinstance(value, type(c)) and value == c for c in choices):  # True is not 1, 'auto' is a str
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _bool(owner: str, name: str, value: Any) -> bool:
    """``value`` if it is True or False (1 and 0 are refused: a typo, not a choice)."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}")
    return value


def _batch(owner: str, value: Any) -> int | None:
    """None for 'auto', else a positive int."""
    if isinstance(value, str) and value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or operator.index(value) < 1:
        raise ValueError(f"{owner}: batch_size must be 'auto' or an int >= 1, got {value!r}")
    return operator.index(value)


def _hidden(owner: str, value: Any) -> tuple[int, ...]:
    """Hidden layer widths as a tuple of positive ints (one int means one hidden layer; () means none)."""
    try:
        if isinstance(value, str | bool):
            raise TypeError
        sizes = (value,) if isinstance(value, Integral) else tuple(value)  # a list or array works too
    except TypeError:
        raise ValueError(f"{owner}: hidden_layer_sizes must be a tuple of positive ints such as (100,), got "
                         f"{value!r}") from None
    return tuple(_int(owner, f"hidden_layer_sizes[{i}]", size, 1) for i, size in enumerate(sizes))


def check(estimator: Any) -> Settings:
    """The estimator's parameters as ``Settings``; ValueError naming the parameter when one is out of range."""
    owner = type(estimator).__name__
    e = estimator
    if e.layers is not None and not callable(e.layers):
        raise ValueError(f"{owner}: layers must be None or a callable (n_features, n_outputs) -> list of portnn "
                         f"layers, got {e.layers!r}")
    if not isinstance(e.backend, str):
        raise ValueError(f"{owner}: backend must be a backend name such as 'numpy' or 'torch', got {e.backend!r}")
    if e.device is not None and not isinstance(e.device, str):
        raise ValueError(f"{owner}: device must be None or a device name such as 'cpu' or 'cuda:0', got "
                         f"{e.device!r}")
    RANDOM_STATE(e.random_state, "random_state", owner)  # checked, not converted: a RandomState advances per fit
    return Settings(
        layers=e.layers,
        hidden_layer_sizes=_hidden(owner, e.hidden_layer_sizes),
        activation=_choice(owner, "activation", e.activation, tuple(ACTIVATIONS)),
        optimizer=_choice(owner, "optimizer", e.optimizer, OPTIMIZERS),
        lr=_float(owner, "lr", e.lr, 0.0, open_low=True),
        momentum=_float(owner, "momentum", e.momentum, 0.0, 1.0),
        weight_decay=_float(owner, "weight_decay", e.weight_decay, 0.0),
        max_iter=_int(owner, "max_iter", e.max_iter, 1),
        batch_size=_batch(owner, e.batch_size),
        shuffle=_bool(owner, "shuffle", e.shuffle),
        tol=None if e.tol is None else _float(owner, "tol (or None)", e.tol, 0.0),
        n_iter_no_change=_int(owner, "n_iter_no_change", e.n_iter_no_change, 1),
        early_stopping=_bool(owner, "early_stopping", e.early_stopping),
        validation_fraction=_float(owner, "validation_fraction", e.validation_fraction, 0.0, 1.0, open_low=True),
        backend=e.backend,
        device=e.device,
        dtype=_choice(owner, "dtype", e.dtype, FLOAT_DTYPES),
        compile=_choice(owner, "compile", e.compile, COMPILE),
        verbose=_int(owner, "verbose", int(e.verbose) if isinstance(e.verbose, bool) else e.verbose, 0),
    )
