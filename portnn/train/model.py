"""Sequential: layers (configuration), where their arrays live, and the training state; ``fit`` is orchestrated in
``portnn.train.fit``, training runs in ``portnn.train.trainer``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..array import host, tree
from ..array.placement import Placement, backend_name, check_dtype_name, is_floating, standard_namespace, widest
from ..array.policy import policy
from ..array.types import Array, Namespace, Params
from ..array.validation import COUNT, INDEX, Optional
from ..nn import init
from ..nn.layer import Layer
from ..nn.losses import Loss
from ..optim.optimizer import Optimizer, OptState
from ..optim.schedules import Schedule
from . import inputs
from .fit import evaluate, fit, signature
from .state import FIELDS, TrainingState
from .step import Step
from .summary import summary


class Sequential:
    """Layers applied in order. Parameters are drawn on the host from ``seed`` and placed, on first use, in the
    namespace and on the device of the data (or where ``to()`` puts them), as ``dtype`` (default: the data's
    float dtype, float64 for integer data). The fields of ``training`` (a ``TrainingState``) read and set as
    attributes: ``net.params``, ``net.epoch``, ``net.history``, ``net.optimizer_state``, ..."""

    # the TrainingState fields, forwarded by __getattr__/__setattr__ (declared here for type checkers)
    params: Params
    state: Params
    optimizer_state: OptState
    epoch: int
    schedule_t: int
    history: dict[str, list[float]]
    loss: Loss | None
    optimizer: Optimizer | None
    metrics: list[str] | None
    schedule: Schedule | None
    clip_norm: float | None
    shuffle_seed: int | None

    def __init__(self, *layers: Layer, seed: int = 0, dtype: str | None = None) -> None:
        self._setup(layers, seed, dtype)
        params, state = init.draw(self.layers, self.seed)  # host float64 until placed
        self.training = TrainingState(params, state)

    @classmethod
    def from_state_dict(cls, *layers: Layer, state: dict[str, Any], seed: int = 0,
                        dtype: str | None = None) -> Sequential:
        """A model of ``layers`` holding the host arrays of ``state`` ('INDEX.NAME' as ``state_dict``), checked
        against each layer's ``param_shapes()``/``state_shapes()``; nothing is drawn (``seed`` still keys shuffles
        and dropout)."""
        net = cls.__new__(cls)
        net._setup(layers, seed, dtype)
        net.load_state_dict(state)
        return net

    def _setup(self, layers: tuple[Layer, ...], seed: int, dtype: str | None) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layer {i} must be a portnn Layer, got {type(layer).__name__}")
        self.layers = list(layers)
        self.seed = INDEX(seed, "seed", "Sequential")
        self.dtype = check_dtype_name(dtype, "Sequential")
        self.placement: Placement | None = None
        self.training = TrainingState([{} for _ in layers], [{} for _ in layers])
        self.info: dict[str, Any] = {}  # JSON-able notes saved with checkpoints (the CLI's example, the input shape)
        self.stop_training = False  # set by a callback (EarlyStopping) to end the fit after this epoch
        self.compile_stats: dict[str, Any] = {}  # of the last compiled fit: method, traces, compile_seconds
        self._compiled: dict[Any, Any] = {}  # compiled kernels and forward passes by configuration

    def __getattr__(self, name: str) -> Any:
        training = self.__dict__.get("training")
        if name in FIELDS and training is not None:
            return getattr(training, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in FIELDS:
            self.training = replace(self.training, **{name: value})
        else:
            object.__setattr__(self, name, value)

    # ---- parameters -------------------------------------------------------------------------------------
    def parameters(self) -> dict[tuple[int, str], Array]:
        """All trainable parameters keyed by (layer index, name)."""
        return {(i, name): p for i, layer in enumerate(self.params) for name, p in layer.items()}

    def state_dict(self) -> dict[str, Any]:
        """Host NumPy copies of every parameter and state entry, keyed 'INDEX.NAME' as in PyTorch ('0.weight')."""
        return {k: host.to_numpy(a) for k, a in {**tree.flatten(self.params), **tree.flatten(self.state)}.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace every parameter and state entry from host arrays keyed 'INDEX.NAME'; all are checked (keys,
        shapes against ``param_shapes()``/``state_shapes()``, real dtypes, finite values) before any is changed."""
        if not isinstance(state, dict):
            raise TypeError(f"load_state_dict: state must be a dict of arrays keyed 'INDEX.NAME', got "
                            f"{type(state).__name__}")
        # the declared shapes as a tree of zero-size placeholders (broadcast views: nothing is allocated)
        like = {kind: [{n: host.placeholder(shape) for n, shape in getattr(layer, f"{kind}_shapes")().items()}
                       for layer in self.layers] for kind in ("param", "state")}
        expected = {k: tuple(a.shape) for k, a in {**tree.flatten(like["param"]),
                                                    **tree.flatten(like["state"])}.items()}
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or extra:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {extra}")
        checked = {}
        for key, shape in expected.items():
            value = host.as_host_array(state[key], f"load_state_dict[{key!r}]")
            if tuple(value.shape) != tuple(shape):
                raise ValueError(f"load_state_dict: {key!r} has shape {tuple(value.shape)}, layer "
                                 f"{key.partition('.')[0]} needs {tuple(shape)}")
            if value.dtype.kind not in "iuf":
                raise TypeError(f"load_state_dict: {key!r} has dtype {value.dtype}, expected a real number dtype")
            bad = host.count_non_finite(value)
            if bad:
                raise ValueError(f"load_state_dict: {key!r} has {bad} non-finite value(s) (nan or inf) of "
                                 f"{value.size}; a model never holds non-finite parameters")
            checked[key] = self._place_host(value)
        self.training = replace(self.training, params=tree.unflatten(checked, like["param"]),
                                state=tree.unflatten(checked, like["state"]))

    def _place_host(self, value: Any) -> Any:
        if self.placement is None:  # on the host until placed: in the model's dtype when it names one
            return host.as_host_array(value, "parameter", dtype=self.dtype or "float64")
        p = self.placement
        return host.from_numpy(value, p.xp, device=p.device, dtype=p.dtype)

    # ---- placement --------------------------------------------------------------------------------------
    def to(self, xp: Namespace | str, device: Any = None, dtype: str | None = None) -> Sequential:
        """Move parameters, state and optimizer state to namespace ``xp`` on ``device`` as ``dtype``; returns self.

        ``xp`` may be a backend name from ``backends/`` ('torch') with ``device`` a string ('cuda:0', 'device1')."""
        if isinstance(xp, str):
            from ..array import backends

            xp, device = backends.load(xp, device)
        else:
            xp = standard_namespace(xp)
            if device is None:
                device = xp.__array_namespace_info__().default_device()
        dtype = check_dtype_name(dtype, "Sequential.to") or (self.placement.dtype_name if self.placement
                                                             else self.dtype or "float64")
        self._move(Placement(xp, device, getattr(xp, dtype)))
        return self

    def _move(self, target: Placement) -> None:
        """Copy parameters, state and optimizer state to ``target`` through the host (integer counters stay
        integers)."""
        def move(a: Any) -> Any:
            values = host.to_numpy(a)
            dtype = target.dtype if values.dtype.kind == "f" else target.index_dtype
            return host.from_numpy(values, target.xp, device=target.device, dtype=dtype)

        if widest(target.xp, target.dtype_name, None) is None:  # JAX without x64 has no float64: say so first
            raise RuntimeError(f"{backend_name(target.xp)} cannot hold {target.dtype_name} here "
                               "(for JAX, set JAX_ENABLE_X64=1 before importing jax)")
        moved = tree.map(move, self.training.arrays())
        self.training = self.training.with_arrays(moved)
        self.placement = target

    def place(self, xp: Namespace, device: Any, x: Array) -> Placement:
        """The model's placement; on first use, in x's namespace and device as the model's or x's float dtype."""
        if self.placement is None:
            dtype = self.dtype or (("float32" if x.dtype == xp.float32 else "float64") if is_floating(xp, x)
                                   else "float64")
            self._move(Placement(xp, device, getattr(xp, dtype)))
        assert self.placement is not None
        return self.placement

    # ---- computation ------------------------------------------------------------------------------------
    def step(self, loss: Loss | None = None, optimizer: Optimizer | None = None) -> Step:
        """The pure training step of this model where it is placed (loss/optimizer default to the last fit's)."""
        if self.placement is None:
            raise RuntimeError("Sequential.step: the model is not placed yet; call to(...) or fit/predict first")
        return Step(self.layers, loss or self.loss, optimizer or self.optimizer, self.placement, self.seed,
                    self.clip_norm)

    def predict(self, X: Any, *, batch_size: int | None = None, compile: bool | str = "auto") -> Array:
        """Network output for X of shape (batch, features, ...), in X's namespace and on its device.

        X must hold finite real numbers; an output that overflows to nan or inf is a FloatingPointError, never
        returned (two host reads per call: the input check and the output check). ``batch_size``: the forward
        pass runs on that many rows at a time (memory bounded by a batch, not by X; the same numbers). ``compile``
        as in ``fit``: the forward pass is compiled where training would be."""
        Optional(COUNT)(batch_size, "batch_size", "predict")
        p, x = inputs.inputs(self, X, "predict")
        forward, n = self._inference(compile), x.shape[0]
        size = n if batch_size is None else min(batch_size, n)
        parts = [forward(self.params, self.state, x[start:min(start + size, n), ...]) for start in range(0, n, size)]
        xp = p.xp
        out = parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)
        if not host.to_bool(xp.all(xp.isfinite(out))):
            rows = host.to_numpy(xp.any(~xp.isfinite(xp.reshape(out, (out.shape[0], -1))), axis=1)).nonzero()[0]
            raise FloatingPointError(f"predict: the output is not finite (nan or inf) for {rows.size} of "
                                     f"{out.shape[0]} rows, the first row {int(rows[0])}: these inputs overflow the "
                                     "model's arithmetic")
        inputs.remember_shape(self, x)
        return out

    def _inference(self, requested: bool | str) -> Any:
        """forward(params, state, x) -> output in inference, compiled where ``fit(compile=requested)`` would compile
        (built once per configuration, so later calls do not retrace)."""
        p = self.placement
        assert p is not None
        use = policy(p, requested).compiler
        key = ("inference", signature(self.layers), p.describe(), str(p.device), use.method)
        fn = self._compiled.get(key)
        if fn is None:
            step = Step(self.layers, self.loss, self.optimizer, p, self.seed, self.clip_norm,
                        use.scan if use.loops else None)

            def forward(params: Params, state: Params, x: Array) -> Array:
                return step.forward(params, state, x)[0]

            fn = self._compiled[key] = use.jit(forward) if use.compiles else forward
        return fn

    def gradients(self, X: Any, y: Any, *, loss: Loss | None = None) -> dict[tuple[int, str], Array]:
        """Gradients of ``loss`` (default: the last fit's) on (X, y) as one batch, keyed (layer index, name), in the
        model's namespace; the model is unchanged (for gradient checks)."""
        loss = loss or self.loss
        if not isinstance(loss, Loss):
            raise TypeError(f"gradients: needs a portnn loss: pass loss= or call fit first, got {loss!r}")
        _, x_all, y_all, _ = inputs.training_data(self, X, y, loss, "gradients")
        _, grads, _, _ = self.step(loss).gradients(self.params, self.state, x_all, y_all, (self.epoch, 0))
        return {(i, name): g for i, layer in enumerate(grads) for name, g in layer.items()}

    def summary(self, input_shape: Any = None) -> str:
        """Each layer's output shape for an input of ``input_shape`` (default: the one the model remembers), its
        parameter and state counts, totals and bytes, as Keras prints (``portnn.train.summary``)."""
        return summary(self, input_shape)

    fit = fit  # train: portnn.train.fit.fit (check -> resolve -> build the step -> run the loop -> commit)
    evaluate = evaluate  # loss and metrics on data: portnn.train.fit.evaluate

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"

