"""What Dense, Conv1D and Conv2D share: sizes in and out, an optional bias, the weight's initialiser and the
bias's, all checked when set; parameters drawn on the host (the weight, then the bias: 'zeros' draws nothing, so
models without it keep their random streams); the configuration saved in checkpoints."""

from __future__ import annotations

from typing import Any, ClassVar

from ..array.validation import BOOLEAN, COUNT, Checked, Choice, Rule
from .init import BIAS_INITIALIZERS, INITIALIZERS
from .init import bias as draw_bias
from .layer import Layer


class _Affine(Checked, Layer):
    """Base of the layers y = x W (+ b). A subclass names its two sizes (``sizes``), gives the weight's shape
    (``weight_shape``) and its geometry for ``config`` (kernel, stride, padding)."""

    sizes: ClassVar[tuple[str, str]] = ("in_features", "out_features")
    constraints: ClassVar[dict[str, Rule]] = {"bias": BOOLEAN, "bias_init": Choice(*BIAS_INITIALIZERS)}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.constraints = {**_Affine.constraints, **dict.fromkeys(cls.sizes, COUNT), **cls.__dict__.get(
            "constraints", {})}

    def _affine(self, size_in: int, size_out: int, bias: bool, init: str, bias_init: str) -> None:
        """Set (and check) what every affine layer holds; the weight initialiser named ``init``."""
        setattr(self, self.sizes[0], size_in)
        setattr(self, self.sizes[1], size_out)
        self.bias, self.bias_init = bias, bias_init
        self.initializer = Choice(*INITIALIZERS)(init, "init", type(self).__name__)

    def weight_shape(self) -> tuple[int, ...]:
        """The weight's shape (its fan-in and fan-out are what the initialisers scale by)."""
        raise NotImplementedError

    def geometry(self) -> dict[str, Any]:
        """The configuration between the sizes and the bias (kernel_size, stride, padding); none for Dense."""
        return {}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"weight": self.weight_shape()}
        return {**shapes, "bias": (getattr(self, self.sizes[1]),)} if self.bias else shapes

    def init(self, rng: Any) -> dict[str, Any]:
        """The weight from the initialiser, then the bias from ``bias_init``; drawn on the host, identical on every
        backend."""
        shapes = self.param_shapes()
        params = {"weight": INITIALIZERS[self.initializer](rng, shapes["weight"])}
        if self.bias:
            params["bias"] = draw_bias(rng, self.bias_init, shapes["weight"], shapes["bias"])
        return params

    def config(self) -> dict[str, Any]:
        config = {self.sizes[0]: getattr(self, self.sizes[0]), self.sizes[1]: getattr(self, self.sizes[1]),
                  **self.geometry(), "bias": self.bias, "init": self.initializer}
        # bias_init only when not the default: models with zero biases save the same architecture JSON as before
        return config if self.bias_init == "zeros" else {**config, "bias_init": self.bias_init}
