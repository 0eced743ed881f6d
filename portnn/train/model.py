"""Sequential: a thin model holding layers (configuration), their parameters and state, the optimizer state, and
where they live; ``fit`` builds the pure step and hands it to the loop."""

from __future__ import annotations

import math
import warnings
from typing import Any

from ..array import host
from ..array.compile import Compiler, compiler
from ..array.numbers import positive
from ..array.placement import (
    Placement,
    as_array,
    backend_name,
    check_dtype_name,
    check_seed,
    is_floating,
    namespace_of,
    standard_namespace,
)
from ..array.types import Array, Namespace, Params
from ..nn import init, metrics
from ..nn.layer import Layer
from ..nn.losses import Loss
from ..optim.optimizer import Optimizer, OptState
from ..optim.schedules import Schedule
from . import checks
from .batches import batches
from .callbacks import Callback, Progress, check_every, wants_steps
from .compiled import CompiledTrainer
from .history import History
from .loop import Trainer
from .parallel import strategy
from .rates import Rates
from .step import Step
from .totals import Totals


class Sequential:
    """Layers applied in order. Parameters are drawn on the host from ``seed`` and placed, on first use, in the
    namespace and on the device of the data (or where ``to()`` puts them), as ``dtype`` (default: the data's
    float dtype, float64 for integer data)."""

    params: Params  # one {name: array} per layer
    state: Params  # one {name: array} of non-trainable state per layer

    def __init__(self, *layers: Layer, seed: int = 0, dtype: str | None = None) -> None:
        self._setup(layers, seed, dtype)
        self.params, self.state = init.draw(self.layers, self.seed)  # host float64 until placed

    @classmethod
    def from_state_dict(cls, *layers: Layer, state: dict[str, Any], seed: int = 0,
                        dtype: str | None = None) -> Sequential:
        """A model of ``layers`` holding the host arrays of ``state`` ('INDEX.NAME' as ``state_dict``), checked
        against each layer's ``param_shapes()``/``state_shapes()``; nothing is drawn (``seed`` still keys shuffles
        and dropout)."""
        net = cls.__new__(cls)
        net._setup(layers, seed, dtype)
        net.params, net.state = [{} for _ in net.layers], [{} for _ in net.layers]
        net.load_state_dict(state)
        return net

    def _setup(self, layers: tuple[Layer, ...], seed: int, dtype: str | None) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layer {i} must be a portnn Layer, got {type(layer).__name__}")
        self.layers = list(layers)
        self.seed = check_seed(seed, "Sequential: seed")
        self.dtype = check_dtype_name(dtype, "Sequential")
        self.placement: Placement | None = None
        self.params, self.state = [], []
        self.loss: Loss | None = None
        self.optimizer: Optimizer | None = None
        # the optimizer's state for THIS model: an optimizer object holds only hyper-parameters
        self.optimizer_state: OptState = {}
        self.schedule: Schedule | None = None  # the learning-rate schedule of the last fit, and its counter
        self.schedule_t = 0  # steps or epochs trained under ``schedule`` (saved, so a resumed fit continues it)
        self.clip_norm: float | None = None  # gradient clipping by global norm of the last fit
        self.stop_training = False  # set by a callback (EarlyStopping) to end the fit after this epoch
        self.metrics: list[str] | None = None
        self.shuffle_seed: int | None = None  # the seed given to fit; kept so a resumed fit shuffles the same way
        self.epoch = 0
        self.history: dict[str, list[float]] = {}  # every epoch so far: 'loss', 'accuracy', 'val_loss', ...
        self.info: dict[str, Any] = {}  # JSON-able notes saved with checkpoints (e.g. the CLI's example name)
        self.compile_stats: dict[str, Any] = {}  # of the last compiled fit: method, traces, compile_seconds
        self._compiled: dict[Any, Any] = {}  # compiled trainers and forward passes by configuration (see fit)

    # ---- parameters -------------------------------------------------------------------------------------
    def parameters(self) -> dict[tuple[int, str], Array]:
        """All trainable parameters keyed by (layer index, name)."""
        return {(i, name): p for i, layer in enumerate(self.params) for name, p in layer.items()}

    def state_dict(self) -> dict[str, Any]:
        """Host NumPy copies of every parameter and state entry, keyed 'INDEX.NAME' as in PyTorch ('0.weight')."""
        return {f"{i}.{name}": host.to_numpy(a) for tree in (self.params, self.state)
                for i, layer in enumerate(tree) for name, a in layer.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace every parameter and state entry from host arrays keyed 'INDEX.NAME'; all are checked (keys,
        shapes against ``param_shapes()``/``state_shapes()``, real dtypes, finite values) before any is changed."""
        if not isinstance(state, dict):
            raise TypeError(f"load_state_dict: state must be a dict of arrays keyed 'INDEX.NAME', got "
                            f"{type(state).__name__}")
        expected = {f"{i}.{name}": (i, name, tuple(shape), kind) for i, layer in enumerate(self.layers)
                    for kind, shapes in (("params", layer.param_shapes()), ("state", layer.state_shapes()))
                    for name, shape in shapes.items()}
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or extra:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {extra}")
        params: Params = [{} for _ in self.layers]
        layer_state: Params = [{} for _ in self.layers]
        for key, (i, name, shape, kind) in expected.items():
            value = host.as_host_array(state[key], f"load_state_dict[{key!r}]")
            if tuple(value.shape) != shape:
                raise ValueError(f"load_state_dict: {key!r} has shape {tuple(value.shape)}, layer {i} needs {shape}")
            if value.dtype.kind not in "iuf":
                raise TypeError(f"load_state_dict: {key!r} has dtype {value.dtype}, expected a real number dtype")
            bad = host.count_non_finite(value)
            if bad:
                raise ValueError(f"load_state_dict: {key!r} has {bad} non-finite value(s) (nan or inf) of "
                                 f"{value.size}; a model never holds non-finite parameters")
            (params if kind == "params" else layer_state)[i][name] = self._place_host(value)
        self.params, self.state = params, layer_state

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
            dtype = target.dtype if values.dtype.kind == "f" else target.xp.int64
            return host.from_numpy(values, target.xp, device=target.device, dtype=dtype)

        def tree(t: Params) -> Params:
            return [{n: move(a) for n, a in layer.items()} for layer in t]

        params = tree(self.params)
        first = next((a for layer in params for a in layer.values()), None)
        if first is not None and first.dtype != target.dtype:  # JAX without x64 gives float32
            raise RuntimeError(f"{backend_name(target.xp)} cannot hold {target.dtype_name} here "
                               "(for JAX, set JAX_ENABLE_X64=1 before importing jax)")
        opt_state = {k: tree(v) if isinstance(v, list) else move(v) for k, v in self.optimizer_state.items()}
        self.params, self.state, self.optimizer_state = params, tree(self.state), opt_state
        self.placement = target

    def _resolve(self, arrays: dict[str, Any], where: str) -> tuple[Namespace, Any, dict[str, Any]]:
        """(xp, device, arrays) of a public call's data: one namespace and device, the model's if it is placed, and
        real finite numbers in at least one row; checked before anything is computed or placed."""
        arrays = {name: as_array(a, name, self.placement) for name, a in arrays.items()}
        xp, device = namespace_of(arrays, where)
        first = next(iter(arrays))
        p = self.placement
        if p is not None and xp is not p.xp:
            raise TypeError(f"{where}: {first} is a {backend_name(xp)} array but the model lives in "
                            f"{p.describe()}; call model.to(...) or pass {backend_name(p.xp)} arrays")
        if p is not None and device != p.device:
            raise ValueError(f"{where}: {first} is on device {device} but the model is on {p.device}; "
                             "move the data or call model.to(...)")
        checks.data(arrays, where, xp)
        return xp, device, arrays

    def _place(self, xp: Namespace, device: Any, x: Array) -> Placement:
        """The model's placement; on first use, in x's namespace and device as the model's or x's float dtype."""
        if self.placement is None:
            dtype = self.dtype or (("float32" if x.dtype == xp.float32 else "float64") if is_floating(xp, x)
                                   else "float64")
            self._move(Placement(xp, device, getattr(xp, dtype)))
        assert self.placement is not None
        return self.placement

    # ---- computation ------------------------------------------------------------------------------------
    def _check_shapes(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        for i, layer in enumerate(self.layers):
            shape = layer.output_shape(shape, f"{where}: layer {i}")
        return shape

    def _float_input(self, x: Array, p: Placement) -> Array:
        return x if x.dtype == p.dtype else p.xp.astype(x, p.dtype)

    def step(self, loss: Loss | None = None, optimizer: Optimizer | None = None) -> Step:
        """The pure training step of this model where it is placed (loss/optimizer default to the last fit's)."""
        if self.placement is None:
            raise RuntimeError("Sequential.step: the model is not placed yet; call to(...) or fit/predict first")
        return Step(self.layers, loss or self.loss, optimizer or self.optimizer, self.placement, self.seed,
                    self.clip_norm)

    def predict(self, X: Any, *, compile: bool | str = "auto") -> Array:
        """Network output for X of shape (batch, features), in X's namespace and on its device.

        X must hold finite real numbers; an output that overflows to nan or inf is a FloatingPointError, never
        returned (two host reads per call: the input check and the output check). ``compile`` as in ``fit``: the
        forward pass is compiled where training would be."""
        xp, device, arrays = self._resolve({"X": X}, "predict")
        self._check_shapes(tuple(arrays["X"].shape), "predict")
        p = self._place(xp, device, arrays["X"])
        out = self._inference(compile)(self.params, self.state, self._float_input(arrays["X"], p))
        if not host.to_bool(xp.all(xp.isfinite(out))):
            rows = host.to_numpy(xp.any(~xp.isfinite(xp.reshape(out, (out.shape[0], -1))), axis=1)).nonzero()[0]
            raise FloatingPointError(f"predict: the output is not finite (nan or inf) for {rows.size} of "
                                     f"{out.shape[0]} rows, the first row {int(rows[0])}: these inputs overflow the "
                                     "model's arithmetic")
        return out

    def gradients(self, X: Any, y: Any, *, loss: Loss | None = None) -> dict[tuple[int, str], Array]:
        """Gradients of ``loss`` (default: the last fit's) on (X, y) as one batch, keyed (layer index, name), in the
        model's namespace; the model is unchanged (for gradient checks)."""
        loss = loss or self.loss
        if not isinstance(loss, Loss):
            raise TypeError(f"gradients: needs a portnn loss: pass loss= or call fit first, got {loss!r}")
        _, x_all, y_all, _ = self._training_data(X, y, loss, "gradients")
        _, grads, _, _ = self.step(loss).gradients(self.params, self.state, x_all, y_all, (self.epoch, 0))
        return {(i, name): g for i, layer in enumerate(grads) for name, g in layer.items()}

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        loss: Loss | None = None,
        optimizer: Optimizer | None = None,
        epochs: int | None = None,
        steps: int | None = None,
        batch_size: int | None = None,
        shuffle: bool = True,
        seed: int | None = None,
        validation_data: tuple[Any, Any] | None = None,
        metrics: list[str] | None = None,
        progress: Any = None,
        callbacks: list[Callback] | None = None,
        communicator: Any = None,
        compile: bool | str = "auto",
        schedule: Schedule | bool | None = None,
        clip_norm: float | bool | None = None,
    ) -> History:
        """Train for ``epochs`` passes over (X, y) (default 1), or for ``steps`` optimizer steps (the last epoch cut
        short: it counts as an epoch, its record covers the rows it saw, and the next fit starts a new epoch); return
        the loss of each epoch (a list, with ``.metrics``).

        Full batch when ``batch_size`` is None; otherwise mini-batches, shuffled on the host from ``seed``
        (default: the seed of the previous ``fit``, else the model's seed) so every backend sees the same batches.
        ``loss``/``optimizer``/``metrics`` default to those of the previous ``fit``, so a second call (also on a
        model just loaded) continues where training stopped. ``metrics`` default to accuracy for classification
        losses; each epoch records the training loss and metrics and, with ``validation_data=(X_val, y_val)``,
        'val_loss' and 'val_<metric>', in the returned history and in ``self.history``. ``progress(epoch, loss)``
        is called after each epoch; ``callbacks`` (``portnn.Callback`` objects) get ``on_step``/``on_epoch``
        events. A non-finite loss or update raises FloatingPointError naming the epoch and batch, with the model
        rolled back to the weights of the last finite step: a fit never returns non-finite weights.

        With ``communicator`` (``portnn.distributed``; every rank makes the same call on the same data), training is
        data-parallel: the ranks check that they agree on data and settings, rank 0's weights are broadcast, each
        rank computes on its rows of every global batch (the same batches as one process) and one Allreduce per
        step sums the gradients, so all ranks end with the same weights as single-process training.

        ``compile``: True compiles the step where the backend can (``backends/*.toml`` [compile]: JAX's ``jax.jit``,
        torch's ``torch.compile``), False never, 'auto' (default) where the backend file says it pays. Compiled
        training reads the host once per epoch (every step only for a callback that wants steps) with the same
        rollback; ``self.compile_stats`` says how many traces it took and how long they took.

        ``schedule`` (``portnn.StepLR``, ``ExponentialLR``, ``CosineAnnealing``; per step or per epoch) sets the
        learning rate of every step from the optimizer's ``lr``, as torch.optim.lr_scheduler; ``clip_norm`` clips
        the gradients to that global L2 norm before each update, as torch.nn.utils.clip_grad_norm_. Both default
        to the previous fit's (so a loaded checkpoint continues its schedule where it stopped: ``schedule_t``
        counts its steps or epochs) and False turns them off. A callback that sets ``model.stop_training``
        (``portnn.EarlyStopping``) ends the fit after the current epoch."""
        loss, optimizer = self._check_training_args(loss, optimizer, epochs, batch_size, seed, shuffle, progress,
                                                    callbacks)
        schedule, clip = self._controls(schedule, clip_norm, steps, epochs, optimizer)
        parallel = strategy(communicator)
        names = self._metric_names(loss, metrics, "fit")
        p, x_all, y_all, val = self._training_data(X, y, loss, "fit", self._validation_arrays(validation_data))
        use = self._compiler(p, compile, communicator)
        n = x_all.shape[0]
        size = n if batch_size is None else min(batch_size, n)
        per_epoch = -(-n // size)
        epochs = (1 if epochs is None else epochs) if steps is None else -(-steps // per_epoch)
        everyone = ([Progress(progress)] if progress is not None else []) + list(callbacks or [])
        recorded = ["loss", *names] + (["val_loss", *(f"val_{m}" for m in names)] if val is not None else [])
        for callback in everyone:  # before anything changes: a callback may refuse this fit's settings
            callback.begin(recorded)
        previous = (self.loss, self.optimizer, self.metrics, self.shuffle_seed, self.optimizer_state, self.schedule,
                    self.schedule_t, self.clip_norm)
        if self.optimizer is not optimizer or not self.optimizer_state:  # a new optimizer starts from fresh state
            self.optimizer_state = optimizer.init_state(self.params, p.xp, p.device)
        if schedule is not self.schedule:  # a new schedule starts at its beginning
            self.schedule_t = 0
        self.loss, self.optimizer, self.metrics, self.schedule, self.clip_norm = loss, optimizer, names, schedule, clip
        self.stop_training = False
        if seed is not None:
            self.shuffle_seed = int(seed)
        try:  # data-parallel: every rank checks that all agree on the data and settings before any training
            parallel.begin(self, (x_all, y_all), batch_size=size, epochs=epochs, shuffle=shuffle, steps=steps)
        except BaseException:
            (self.loss, self.optimizer, self.metrics, self.shuffle_seed, self.optimizer_state, self.schedule,
             self.schedule_t, self.clip_norm) = previous
            raise
        step = self.step(loss, optimizer)
        rates = Rates(schedule, getattr(optimizer, "lr", 0.0))
        validate = None if val is None else (lambda: self._evaluate(step, val[0], val[1], loss, names, batch_size,
                                                                    "fit (validation_data)"))
        if not use.compiles and not (communicator is None and self._reads_per_epoch(p)):
            return Trainer(self, step, parallel, everyone, rates).run(x_all, y_all, epochs=epochs, size=size,
                                                                      shuffle=shuffle, names=names,
                                                                      validate=validate, steps=steps)
        # compiled, or eager on a device that reads once per epoch: the same device-side loop and rollback
        trainer = self._compiled_trainer(step, use, everyone, names, rates)
        use = trainer.compiler  # a cached trainer keeps its compiler (and its compiled functions)
        before = (use.traces, use.compile_seconds)
        try:
            return trainer.run(x_all, y_all, epochs=epochs, size=size, shuffle=shuffle, validate=validate,
                               steps=steps)
        except use.trace_errors() as err:  # raised while tracing, before the model changed
            if compile is True:
                raise
            warnings.warn(f"fit: {use.method} cannot compile this model's step ({type(err).__name__}: "
                          f"{str(err).splitlines()[0]}); training eagerly (pass compile=False to say so)",
                          UserWarning, stacklevel=2)
            self._compiled.pop(next(k for k, v in self._compiled.items() if v is trainer), None)
            return Trainer(self, step, parallel, everyone, rates).run(x_all, y_all, epochs=epochs, size=size,
                                                                      shuffle=shuffle, names=names,
                                                                      validate=validate, steps=steps)
        finally:
            if use.compiles:
                self.compile_stats = {"method": use.method, "traces": use.traces - before[0],
                                      "compile_seconds": use.compile_seconds - before[1], "traces_total": use.traces}

    def _inference(self, requested: bool | str) -> Any:
        """forward(params, state, x) -> output in inference, compiled where ``fit(compile=requested)`` would compile
        (built once per configuration, so later calls do not retrace)."""
        p = self.placement
        assert p is not None
        use = self._compiler(p, requested, None)
        key = ("inference", repr(self.layers), p.describe(), str(p.device), use.method)
        fn = self._compiled.get(key)
        if fn is None:
            step = self.step()

            def forward(params: Params, state: Params, x: Array) -> Array:
                return step.forward(params, state, x)[0]

            fn = self._compiled[key] = use.jit(forward) if use.compiles else forward
        return fn

    @staticmethod
    def _reads_per_epoch(p: Placement) -> bool:
        """Whether eager training on this placement keeps its losses on the device until the epoch ends."""
        from ..array import backends

        backend = backends.registry().get(backend_name(p.xp))
        return backend is not None and backends.reads_per_epoch(backend, p.device)

    def _compiler(self, p: Placement, requested: bool | str, communicator: Any) -> Compiler:
        """The compiler of this fit (see ``fit``): eager for data-parallel training and unknown namespaces."""
        from ..array import backends

        name = backend_name(p.xp)
        backend = backends.registry().get(name)
        if backend is None:
            if requested is True:
                raise ValueError(f"fit: compile=True, but {name} is not a backend of backends/*.toml")
            return compiler(backends.get("numpy"), False)
        use = compiler(backend, requested)
        if use.compiles and communicator is not None:
            if requested is True:
                raise ValueError("fit: compiled data-parallel training is not supported yet (the Allreduce runs on "
                                 "the host between the step's gradients and its update); use compile=False")
            return compiler(backend, False)
        return use

    def _compiled_trainer(self, step: Step, use: Compiler, callbacks: list[Callback], names: list[str],
                          rates: Rates) -> CompiledTrainer:
        """A compiled trainer whose compiled functions are reused by later fits of the same configuration (also
        after load_state_dict), so a second fit does not retrace."""
        key = (repr(self.layers), repr(step.loss), repr(step.optimizer), step.placement.describe(),
               str(step.placement.device), self.seed, tuple(names), use.method, step.clip_norm,
               rates.schedule is not None)
        cached = self._compiled.get(key)
        if cached is None:
            cached = self._compiled[key] = CompiledTrainer(self, step, use, callbacks, names)
        cached.callbacks, cached.per_step, cached.rates = callbacks, wants_steps(callbacks), rates
        return cached

    def evaluate(self, X: Any, y: Any, *, loss: Loss | None = None, metrics: list[str] | None = None,
                 batch_size: int | None = None, compile: bool | str = "auto") -> dict[str, float]:
        """Loss and metrics of the model on (X, y), e.g. {'loss': 0.08, 'accuracy': 0.97}; the weights are unchanged.

        ``loss``/``metrics`` default to those of the last ``fit`` (accuracy for classification losses)."""
        loss = loss or self.loss
        if not isinstance(loss, Loss):
            raise TypeError(f"evaluate: needs a portnn loss: pass loss= or call fit first, got {loss!r}")
        checks.positive_int(batch_size, "batch_size", "evaluate", optional=True)
        names = self._metric_names(loss, metrics, "evaluate")
        _, x_all, y_all, _ = self._training_data(X, y, loss, "evaluate")
        return self._evaluate(self.step(loss), x_all, y_all, loss, names, batch_size, "evaluate",
                              self._inference(compile))

    def _evaluate(self, step: Step, x_all: Array, y_all: Array, loss: Loss, names: list[str],
                  batch_size: int | None, where: str, forward: Any = None) -> dict[str, float]:
        n = x_all.shape[0]
        size = n if batch_size is None else min(batch_size, n)
        totals, start, ctx = Totals(loss, names, step.inference.xp), 0, step.inference
        forward = forward or (lambda params, state, x: step.forward(params, state, x)[0])
        for xb, yb in batches(x_all, y_all, size, step.placement):
            out = forward(self.params, self.state, xb)
            value = host.to_float(loss.forward(out, yb, ctx)[0])
            if not math.isfinite(value):
                raise FloatingPointError(f"{where}: loss is {value} on rows {start} to {start + xb.shape[0] - 1}: "
                                         "the model's outputs overflow on these inputs")
            totals.add(value, xb.shape[0], out, yb)
            start += xb.shape[0]
        return totals.result(n)

    # ---- argument and data checks -----------------------------------------------------------------------
    def _metric_names(self, loss: Loss, names: list[str] | None, where: str) -> list[str]:
        if names is not None:
            return metrics.check(names, where)
        if loss is self.loss and self.metrics is not None:
            return list(self.metrics)
        return metrics.defaults(loss)

    def _validation_arrays(self, validation_data: Any) -> tuple[Any, Any] | None:
        if validation_data is None:
            return None
        if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
            raise TypeError(f"fit: validation_data must be a pair (X_val, y_val), got {type(validation_data).__name__}")
        return validation_data[0], validation_data[1]

    def _check_training_args(self, loss: Loss | None, optimizer: Optimizer | None, epochs: int | None,
                             batch_size: int | None, seed: int | None, shuffle: bool, progress: Any,
                             callbacks: Any) -> tuple[Loss, Optimizer]:
        loss, optimizer = loss or self.loss, optimizer or self.optimizer
        if not isinstance(loss, Loss):
            raise TypeError(f"fit: loss must be a portnn loss such as portnn.SSE(), got {loss!r}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"fit: optimizer must be a portnn optimizer such as portnn.SGD(lr=0.1), got {optimizer!r}")
        if epochs is not None:  # None: one epoch, or as many as ``steps`` needs
            checks.positive_int(epochs, "epochs", "fit", zero=True)
        checks.positive_int(batch_size, "batch_size", "fit", optional=True)
        if seed is not None:
            check_seed(seed, "fit: seed")
        if not isinstance(shuffle, bool):
            raise TypeError(f"fit: shuffle must be True or False, got {shuffle!r}")
        checks.callable_or_none(progress, "progress", "fit")
        if callbacks is not None and (not isinstance(callbacks, list | tuple)
                                      or not all(isinstance(c, Callback) for c in callbacks)):
            raise TypeError(f"fit: callbacks must be a list of portnn.Callback objects, got {callbacks!r}")
        check_every(list(callbacks or []), "fit")
        return loss, optimizer

    def _controls(self, schedule: Any, clip_norm: Any, steps: Any, epochs: Any,
                  optimizer: Optimizer) -> tuple[Schedule | None, float | None]:
        """(schedule, clip_norm) of this fit: None keeps the previous fit's, False turns it off; ``steps`` and
        ``epochs`` are exclusive."""
        if steps is not None:
            checks.positive_int(steps, "steps", "fit", zero=True)
            if epochs is not None:
                raise ValueError(f"fit: give epochs or steps, not both (got epochs={epochs!r}, steps={steps!r})")
        if schedule is None:
            schedule = self.schedule
        elif schedule is False:
            schedule = None
        elif not isinstance(schedule, Schedule):
            raise TypeError(f"fit: schedule must be a portnn schedule such as portnn.StepLR(10), False or None, got "
                            f"{schedule!r}")
        if schedule is not None and not isinstance(getattr(optimizer, "lr", None), float):
            raise TypeError(f"fit: schedule {schedule!r} needs an optimizer with a learning rate lr, got "
                            f"{optimizer!r}")
        if clip_norm is None:
            clip = self.clip_norm
        elif clip_norm is False:
            clip = None
        else:
            if clip_norm is True:
                raise TypeError("fit: clip_norm must be a positive number (the global norm), False or None, got True")
            clip = positive("fit", "clip_norm", clip_norm)
        return schedule, clip

    def _training_data(self, X: Any, y: Any, loss: Loss, where: str,
                       validation: tuple[Any, Any] | None = None) -> tuple[Placement, Array, Array, Any]:
        """(placement, X, y, (X_val, y_val) or None), resolved once: one backend and device with the model, real
        finite values, row counts and shapes checked against the layers and the loss, all before the model is placed;
        floats cast to its dtype."""
        named = {"X": X, "y": y} if validation is None else {"X": X, "y": y, "X_val": validation[0],
                                                            "y_val": validation[1]}
        xp, device, arrays = self._resolve(named, where)
        pairs = [("X", "y")] + ([("X_val", "y_val")] if validation is not None else [])
        out_ndim = {}
        for xn, yn in pairs:
            xa, ya = arrays[xn], arrays[yn]
            if xa.ndim < 2 or ya.ndim < 1 or xa.shape[0] != ya.shape[0]:
                raise ValueError(f"{where}: {xn} has shape {tuple(xa.shape)} and {yn} has shape {tuple(ya.shape)}; "
                                 "they need the same number of rows (samples)")
            out_shape = self._check_shapes(tuple(xa.shape), where if xn == "X" else f"{where} ({xn})")
            loss.check(out_shape, tuple(ya.shape))
            loss.check_targets(ya, out_shape, xp)
            out_ndim[yn] = len(out_shape)
        p = self._place(xp, device, arrays["X"])
        cast = {}
        for xn, yn in pairs:
            cast[xn] = self._float_input(arrays[xn], p)
            targets = is_floating(p.xp, arrays[yn]) or arrays[yn].ndim == out_ndim[yn]  # not class labels
            cast[yn] = self._float_input(arrays[yn], p) if targets else arrays[yn]
        val = (cast["X_val"], cast["y_val"]) if validation is not None else None
        return p, cast["X"], cast["y"], val

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"
