"""Fully connected layer: y = x @ W + b, with W of shape (in_features, out_features)."""

from __future__ import annotations

from typing import Any

from ..array.types import Array
from ..array.validation import BOOLEAN
from .init import bias as draw_bias
from .init import check_bias_init, initializer
from .layer import Context, Grads, Layer


class Dense(Layer):
    """Affine map from (batch, in_features) to (batch, out_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "glorot_uniform",
                 bias_init: str = "zeros") -> None:
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"Dense: {name} must be a positive int, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        self.bias = BOOLEAN(bias, "bias", "Dense")  # 'no' or 0 is a typo, not a choice
        self.initializer = init
        self._draw = initializer(init)  # fails early on an unknown initialiser name
        self.bias_init = check_bias_init(bias_init, "Dense")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {"weight": (self.in_features, self.out_features)}
        return {**shapes, "bias": (self.out_features,)} if self.bias else shapes

    def init(self, rng: Any) -> dict[str, Any]:
        """Weight from the chosen initialiser, then the bias from ``bias_init`` (zeros: nothing drawn); drawn on the
        host, identical on every backend."""
        shapes = self.param_shapes()
        params = {"weight": self._draw(rng, shapes["weight"])}
        if self.bias:
            params["bias"] = draw_bias(rng, self.bias_init, shapes["weight"], shapes["bias"])
        return params

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) != 2 or shape[1] != self.in_features:
            raise ValueError(
                f"{where} ({self!r}) expects input of shape (batch, {self.in_features}), got shape {shape}"
            )
        return (shape[0], self.out_features)

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Array]:
        y = x @ params["weight"]
        return (y + params["bias"] if self.bias else y), x

    def backward(self, params: dict[str, Array], x: Array, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        grads = {"weight": x.T @ dy}
        if self.bias:
            grads["bias"] = ctx.xp.sum(dy, axis=0)
        return (dy @ params["weight"].T if ctx.need_dx else None), grads

    def config(self) -> dict[str, Any]:
        config = {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias,
                  "init": self.initializer}
        # bias_init only when not the default: models with zero biases save the same architecture JSON as before
        return config if self.bias_init == "zeros" else {**config, "bias_init": self.bias_init}
