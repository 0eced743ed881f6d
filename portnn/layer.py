"""The layer contract: ``forward`` keeps what ``backward`` needs; ``backward`` stores gradients by name, returns dx."""

from __future__ import annotations

from typing import Any


class Layer:
    """Base class. ``params``/``grads`` map a name ('weight', 'bias') to an array in the model's namespace."""

    # Layers with training-time randomness (Dropout) set ``keyed = True``; Sequential then sets their
    # ``training_key`` before each forward pass: (model seed, layer index, epoch, batch) while training, None in
    # inference, and they draw from it on the host. Other layers are never given a key.
    keyed = False
    training_key: tuple[int, ...] | None = None
    # Set by data-parallel training (portnn.distributed) on each rank: (first row, stop row, global batch rows) of
    # this rank's slice, so host randomness is drawn for the global batch and sliced: the same as one process.
    training_rows: tuple[int, int, int] | None = None

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}

    def init_params(self, rng: Any) -> dict[str, Any]:
        """Draw this layer's initial parameters on the host from ``rng`` (a numpy Generator); none by default."""
        return {}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter ``init_params`` draws, known without drawing anything: checkpoints are checked
        against it before any memory is allocated. A layer that overrides ``init_params`` overrides this too."""
        return {}

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        """Shape of the output for an input of ``shape``; raise ValueError naming ``where`` if it does not fit."""
        return shape

    def forward(self, x: Any, xp: Any) -> Any:
        """Compute the output for ``x``, keeping what ``backward`` needs."""
        raise NotImplementedError

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        """Store parameter gradients in ``self.grads`` and return dL/dx (None when ``need_dx`` is False)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Constructor arguments, for saving the architecture as JSON."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"
