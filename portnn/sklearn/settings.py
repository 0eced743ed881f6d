"""The estimators' hyper-parameters checked at ``fit`` (sklearn's rule: the constructor only stores them), the default
network they describe and the optimizer they name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np

from ..array.placement import FLOAT_DTYPES
from ..array.validation import (
    BOOLEAN,
    COUNT,
    FRACTION,
    INDEX,
    NON_NEGATIVE,
    POSITIVE,
    AnyOf,
    Choice,
    Function,
    Instance,
    Integer,
    Number,
    Optional,
    Rule,
)
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


# every parameter's rule, declared once (scikit-learn's _parameter_constraints); hidden_layer_sizes and verbose are
# converted by hand below
CONSTRAINTS: dict[str, Rule] = {
    "layers": Optional(Function("a callable (n_features, n_outputs) -> list of portnn layers")),
    "activation": Choice(*ACTIVATIONS), "optimizer": Choice(*OPTIMIZERS), "lr": POSITIVE, "momentum": FRACTION,
    "weight_decay": NON_NEGATIVE, "max_iter": COUNT, "batch_size": AnyOf(Choice("auto"), COUNT),
    "shuffle": BOOLEAN, "tol": Optional(NON_NEGATIVE), "n_iter_no_change": COUNT, "early_stopping": BOOLEAN,
    "validation_fraction": Number(0.0, 1.0, low_open=True), "dtype": Choice(*FLOAT_DTYPES),
    "backend": Instance(str, "a backend name such as 'numpy' or 'torch'"),
    "device": Optional(Instance(str, "a device name such as 'cpu' or 'cuda:0'")), "compile": Choice(*COMPILE),
    "random_state": RANDOM_STATE,  # checked, not converted: a RandomState advances per fit
}


def _hidden(owner: str, value: Any) -> tuple[int, ...]:
    """Hidden layer widths as a tuple of positive ints (one int means one hidden layer; () means none)."""
    try:
        if isinstance(value, str | bool):
            raise TypeError
        sizes = (value,) if isinstance(value, Integral) else tuple(value)  # a list or array works too
    except TypeError:
        raise ValueError(f"{owner}: hidden_layer_sizes must be a tuple of positive ints such as (100,), got "
                         f"{value!r}") from None
    return tuple(COUNT(size, f"hidden_layer_sizes[{i}]", owner) for i, size in enumerate(sizes))


def check(estimator: Any) -> Settings:
    """The estimator's parameters as ``Settings``; ValueError naming the parameter when one is out of range."""
    owner = type(estimator).__name__
    given = {name: rule(getattr(estimator, name), name, owner) for name, rule in CONSTRAINTS.items()}
    given.pop("random_state")
    verbose = estimator.verbose
    return Settings(**{**given, "batch_size": None if given["batch_size"] == "auto" else given["batch_size"],
                       "hidden_layer_sizes": _hidden(owner, estimator.hidden_layer_sizes),
                       "verbose": int(verbose) if isinstance(verbose, bool) else INDEX(verbose, "verbose", owner)})
