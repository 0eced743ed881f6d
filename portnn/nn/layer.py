"""The layer contract. A layer object holds configuration only (sizes, hyper-parameters), never arrays; its math is
two pure functions of arrays, the derivative written right below the forward pass with the same names:

    forward(params, x, ctx)            -> (y, saved)      saved: what backward needs (arrays, shapes, or None)
    backward(params, saved, dy, ctx)   -> (dx, grads)     grads: {name: dL/dparam}; dx is None when not ctx.need_dx

``params`` maps the names in ``param_shapes()`` to arrays in ``ctx.xp``, on ``ctx.device``, in ``ctx.dtype``.
``init(rng)`` draws them on the host from a NumPy Generator, so every backend starts from the same numbers.

Non-trainable state (running statistics, updated by training but never by an optimizer) is declared by
``state_shapes()`` with initial values from ``init_state()``; ``forward`` then finds it in ``params`` beside the
trainable entries, and ``update_state(params, saved, ctx)`` returns the new state after a training forward pass.
The model saves it in checkpoints, moves it with ``to()``, compares it in parity runs and broadcasts it across ranks.

A layer with training-time randomness (Dropout) sets ``keyed = True``: while training its ``ctx.key`` is (model
seed, layer index, epoch, batch). Every public subclass is registered by class name, so checkpoints rebuild it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..array.types import Array, Device, Namespace

LAYERS: dict[str, type[Layer]] = {}  # every public Layer subclass by class name (checkpoints rebuild models from it)
Grads = dict[str, Array]


@dataclass(frozen=True, slots=True)
class Sync:
    """What a layer with batch statistics (BatchNorm) needs on a data-parallel rank: ``total(a)`` sums an array over
    all ranks (a collective: every rank calls it in the same order), and ``weight``, the factor by which this rank's
    gradients are scaled into the global batch's (local rows / global rows for a mean loss, 1 for a sum)."""

    total: Callable[[Array], Array]
    weight: float


@dataclass(frozen=True, slots=True)
class Context:
    """Where and how a forward/backward pass runs: the namespace, device and float dtype; whether this is training;
    for keyed layers the step's random key; for a data-parallel rank its rows (first, stop, global rows) of the
    batch and, when the model has batch statistics, its ``sync``; whether the input gradient is needed (not for
    the first layer); the compiler's ``scan`` for time loops."""

    xp: Namespace
    device: Device
    dtype: Any
    training: bool = False
    key: tuple[int, ...] | None = None
    rows: tuple[int, int, int] | None = None
    need_dx: bool = True
    sync: Sync | None = None
    # the compiler's loop, ``scan(body, carry, xs, length) -> (carry, ys)`` with jax.lax.scan's meaning (ys stacked
    # on a new leading axis), so a recurrent layer's time loop is one compiled loop; None: a Python loop
    scan: Callable[..., Any] | None = None


class Layer:
    """Base class: no parameters, no state, identity shapes. Subclasses implement ``forward`` and ``backward``."""

    keyed: ClassVar[bool] = False
    integer_input: ClassVar[bool] = False  # takes integer ids (Embedding): a model's integer X is not cast to float

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("_"):
            return
        known = LAYERS.get(cls.__name__)
        if known is not None and known.__module__.startswith("portnn.") and cls.__module__ != known.__module__:
            raise TypeError(f"a layer named {cls.__name__} is already registered ({known.__module__}); give "
                            f"{cls.__module__}.{cls.__qualname__} another name")
        LAYERS[cls.__name__] = cls

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each trainable parameter, known without drawing anything (checked before any allocation)."""
        return {}

    def init(self, rng: Any) -> dict[str, Any]:
        """Initial parameters as host arrays drawn from ``rng`` (a numpy Generator), shaped as ``param_shapes()``."""
        return {}

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each non-trainable state entry (e.g. a running mean); none by default."""
        return {}

    def init_state(self) -> dict[str, Any]:
        """Initial state as host arrays, shaped as ``state_shapes()``."""
        return {}

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        """Shape of the output for an input of ``shape``; ValueError naming ``where`` if it does not fit."""
        return shape

    def check_input(self, x: Array, xp: Namespace, where: str) -> None:
        """Raise (naming ``where``) if the values of ``x`` cannot be this layer's input, e.g. token ids out of range;
        for the first layer's input, called once per fit/predict before any work (at most one host read), never
        inside a step: ``forward`` must not depend on it. Nothing to check by default."""

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        """(output, what backward needs) for input ``x``."""
        raise NotImplementedError

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        """(dL/dx or None when ``ctx.need_dx`` is False, {name: dL/dparam}) from the output gradient ``dy``."""
        raise NotImplementedError

    def update_state(self, params: dict[str, Array], saved: Any, ctx: Context) -> dict[str, Array]:
        """New non-trainable state after a training forward pass (only layers with ``state_shapes()``)."""
        return {}

    def config(self) -> dict[str, Any]:
        """Constructor arguments, for saving the architecture as JSON."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"
