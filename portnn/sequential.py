"""A stack of layers trained by backprop: forward through the layers, loss gradient back through them, update."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from . import host, host_random, init
from .layer import Layer
from .losses import Loss
from .optimizers import Key, Optimizer
from .placement import Placement, as_array, backend_name, check_dtype_name, is_floating, namespace_of

Progress = Callable[[int, float], None]


class Sequential:
    """Layers applied in order. Parameters are drawn on the host from ``seed`` and placed, on first use, in the
    namespace and on the device of the data (or where ``to()`` puts them), as ``dtype`` (default: the data's
    float dtype, float64 for integer data)."""

    def __init__(self, *layers: Layer, seed: int = 0, dtype: str | None = None) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layer {i} must be a portnn Layer, got {type(layer).__name__}")
        self.layers = list(layers)
        self.seed = int(seed)
        self.dtype = check_dtype_name(dtype, "Sequential")
        self.placement: Placement | None = None
        self.loss: Loss | None = None
        self.optimizer: Optimizer | None = None
        self.epoch = 0
        for layer, params in zip(self.layers, init.draw(self.layers, self.seed), strict=True):
            layer.params = params  # host float64 until placed

    # ---- parameters -------------------------------------------------------------------------------------
    def parameters(self) -> dict[Key, Any]:
        """All parameters keyed by (layer index, name)."""
        return {(i, name): p for i, layer in enumerate(self.layers) for name, p in layer.params.items()}

    def _set_parameters(self, params: dict[Key, Any]) -> None:
        for (i, name), p in params.items():
            self.layers[i].params[name] = p

    def gradients(self) -> dict[Key, Any]:
        """Gradients from the last backward pass, keyed by (layer index, name)."""
        return {(i, name): g for i, layer in enumerate(self.layers) for name, g in layer.grads.items()}

    def state_dict(self) -> dict[str, Any]:
        """Host NumPy copies of every parameter, keyed 'INDEX.NAME' as in PyTorch (e.g. '0.weight')."""
        return {f"{i}.{name}": host.to_numpy(p) for (i, name), p in self.parameters().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace every parameter from host arrays keyed 'INDEX.NAME'; all are checked before any is changed."""
        expected = {f"{i}.{name}": (i, name, tuple(p.shape)) for (i, name), p in self.parameters().items()}
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or extra:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {extra}")
        new: dict[Key, Any] = {}
        for key, (i, name, shape) in expected.items():
            value = host.as_host_array(state[key], f"load_state_dict[{key!r}]")
            if tuple(value.shape) != shape:
                raise ValueError(f"load_state_dict: {key!r} has shape {tuple(value.shape)}, layer {i} needs {shape}")
            if value.dtype.kind not in "iuf":
                raise TypeError(f"load_state_dict: {key!r} has dtype {value.dtype}, expected a real number dtype")
            new[(i, name)] = self._place_host(value)
        self._set_parameters(new)

    def _place_host(self, value: Any) -> Any:
        if self.placement is None:
            return host.as_host_array(value, "parameter", dtype="float64")
        p = self.placement
        return host.from_numpy(value, p.xp, device=p.device, dtype=p.dtype)

    # ---- placement --------------------------------------------------------------------------------------
    def to(self, xp: Any, device: Any = None, dtype: str | None = None) -> Sequential:
        """Move parameters (and optimizer state) to namespace ``xp`` on ``device`` as ``dtype``; returns self.

        ``xp`` may be a backend name from ``backends/`` ('torch') with ``device`` a string ('cuda:0', 'device1')."""
        if isinstance(xp, str):
            from . import backends

            xp, device = backends.load(xp, device)
        elif device is None:
            device = xp.__array_namespace_info__().default_device()
        dtype = check_dtype_name(dtype, "Sequential.to") or (self.placement.dtype_name if self.placement
                                                             else self.dtype or "float64")
        self._move(Placement(xp, device, getattr(xp, dtype)))
        return self

    def _move(self, target: Placement) -> None:
        """Copy parameters and optimizer state to ``target`` through the host."""
        def move(a: Any) -> Any:
            return host.from_numpy(host.to_numpy(a), target.xp, device=target.device, dtype=target.dtype)

        params = {k: move(p) for k, p in self.parameters().items()}
        if params and next(iter(params.values())).dtype != target.dtype:  # JAX without x64 gives float32
            raise RuntimeError(f"{backend_name(target.xp)} cannot hold {target.dtype_name} here "
                               "(for JAX, set JAX_ENABLE_X64=1 before importing jax)")
        state = None
        if self.optimizer is not None:
            state = {k: {n: move(a) for n, a in s.items()} for k, s in self.optimizer.state.items()}
        self._set_parameters(params)
        if state is not None:
            self.optimizer.state = state
        for layer in self.layers:
            layer.grads = {}
        self.placement = target

    def _resolve(self, arrays: dict[str, Any], where: str) -> tuple[Placement, dict[str, Any]]:
        """Resolve namespace/device/dtype once for a public call; place parameters on first use."""
        arrays = {name: as_array(a, name, self.placement) for name, a in arrays.items()}
        xp, device = namespace_of(arrays, where)
        first = next(iter(arrays))
        if self.placement is None:
            x = arrays[first]
            dtype = self.dtype or (("float32" if x.dtype == xp.float32 else "float64") if is_floating(xp, x)
                                   else "float64")
            self._move(Placement(xp, device, getattr(xp, dtype)))
        p = self.placement
        if xp is not p.xp:
            raise TypeError(f"{where}: {first} is a {backend_name(xp)} array but the model lives in "
                            f"{p.describe()}; call model.to(...) or pass {backend_name(p.xp)} arrays")
        if device != p.device:
            raise ValueError(f"{where}: {first} is on device {device} but the model is on {p.device}; "
                             "move the data or call model.to(...)")
        return p, arrays

    # ---- computation ------------------------------------------------------------------------------------
    def _check_shapes(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        for i, layer in enumerate(self.layers):
            shape = layer.output_shape(shape, f"{where}: layer {i}")
        return shape

    def _forward(self, x: Any, xp: Any) -> Any:
        for layer in self.layers:
            x = layer.forward(x, xp)
        return x

    def _backward(self, dy: Any, xp: Any) -> None:
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            dy = self.layers[i].backward(dy, xp, need_dx=i > 0)  # no gradient for the input

    def _float_input(self, x: Any, p: Placement) -> Any:
        return x if x.dtype == p.dtype else p.xp.astype(x, p.dtype)

    def predict(self, X: Any) -> Any:
        """Network output for X of shape (batch, features), in X's namespace and on its device."""
        p, arrays = self._resolve({"X": X}, "predict")
        x = self._float_input(arrays["X"], p)
        self._check_shapes(tuple(x.shape), "predict")
        return self._forward(x, p.xp)

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        loss: Loss | None = None,
        optimizer: Optimizer | None = None,
        epochs: int = 1,
        batch_size: int | None = None,
        shuffle: bool = True,
        seed: int | None = None,
        progress: Progress | None = None,
    ) -> list[float]:
        """Train for ``epochs`` passes over (X, y) and return the loss of each epoch.

        Full batch when ``batch_size`` is None; otherwise mini-batches, shuffled on the host from ``seed``
        (default: the model's seed) so every backend sees the same batches. ``loss``/``optimizer`` default to
        those of the previous ``fit``. A non-finite loss raises FloatingPointError naming the epoch and batch,
        with the model rolled back to the weights of the last finite step."""
        loss, optimizer = self._check_training_args(loss, optimizer, epochs, batch_size)
        p, x_all, y_all = self._training_data(X, y, loss, "fit")
        if self.optimizer is not optimizer:
            optimizer.state = {}
        self.loss, self.optimizer = loss, optimizer

        n = x_all.shape[0]
        size = n if batch_size is None else min(batch_size, n)
        per_sample = loss.reduction != "sum"
        history: list[float] = []
        self._last_good: tuple[dict, dict] | None = None
        for _ in range(epochs):
            total = 0.0
            for b, (xb, yb) in enumerate(self._batches(x_all, y_all, size, shuffle, seed, p)):
                value = self._step(xb, yb, p.xp, b)
                total += value * xb.shape[0] if per_sample else value
            self.epoch += 1
            history.append(total / n if per_sample else total)
            if progress is not None:
                progress(self.epoch, history[-1])
        return history

    def _step(self, xb: Any, yb: Any, xp: Any, batch: int) -> float:
        """One gradient step on a batch; returns its loss. Nothing is committed unless the loss is finite."""
        loss, optimizer = self.loss, self.optimizer
        value = host.to_float(loss.forward(self._forward(xb, xp), yb, xp))
        if not math.isfinite(value):
            if self._last_good is not None:  # the weights this batch saw came from a step that went wrong
                self._set_parameters(self._last_good[0])
                optimizer.state = self._last_good[1]
            raise FloatingPointError(
                f"fit: loss is {value} at epoch {self.epoch + 1}, batch {batch + 1}; the model is rolled back to "
                "the weights of the last step whose loss was finite (lower the learning rate or check the data)")
        self._backward(loss.backward(xp), xp)
        params = self.parameters()
        self._last_good = (params, optimizer.state)
        params, optimizer.state = optimizer.update(params, self.gradients(), optimizer.state)
        self._set_parameters(params)
        return value

    def _check_training_args(self, loss: Loss | None, optimizer: Optimizer | None, epochs: int,
                             batch_size: int | None) -> tuple[Loss, Optimizer]:
        loss, optimizer = loss or self.loss, optimizer or self.optimizer
        if not isinstance(loss, Loss):
            raise TypeError(f"fit: loss must be a portnn loss such as portnn.SSE(), got {loss!r}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"fit: optimizer must be a portnn optimizer such as portnn.SGD(lr=0.1), got {optimizer!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size <= 0):
            raise ValueError(f"fit: batch_size must be a positive int or None, got {batch_size!r}")
        return loss, optimizer

    def _training_data(self, X: Any, y: Any, loss: Loss, where: str) -> tuple[Placement, Any, Any]:
        """Resolve (X, y) once: same backend/device as the model, row counts and shapes checked, floats cast."""
        p, arrays = self._resolve({"X": X, "y": y}, where)
        x_all, y_all = self._float_input(arrays["X"], p), arrays["y"]
        if x_all.ndim < 2 or y_all.ndim < 1 or x_all.shape[0] != y_all.shape[0]:
            raise ValueError(f"{where}: X has shape {tuple(x_all.shape)} and y has shape {tuple(y_all.shape)}; "
                             "they need the same number of rows (samples)")
        out_shape = self._check_shapes(tuple(x_all.shape), where)
        loss.check(out_shape, tuple(y_all.shape))
        if is_floating(p.xp, y_all) or y_all.ndim == len(out_shape):
            y_all = self._float_input(y_all, p)
        return p, x_all, y_all

    def _batches(self, X: Any, y: Any, size: int, shuffle: bool, seed: int | None, p: Placement) -> Iterator:
        n = X.shape[0]
        if size >= n:
            yield X, y
            return
        if shuffle:
            order = host.from_numpy(host_random.permutation(self.seed if seed is None else seed, self.epoch, n),
                                    p.xp, device=p.device, dtype=p.xp.int64)
        for start in range(0, n, size):
            if shuffle:
                idx = order[start:start + size]
                yield p.xp.take(X, idx, axis=0), p.xp.take(y, idx, axis=0)
            else:
                yield X[start:start + size, ...], y[start:start + size, ...]

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"

