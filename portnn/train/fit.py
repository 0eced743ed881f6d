"""``fit`` and ``evaluate``, as flat orchestration: check the arguments, resolve the data (placing the model), build
the training state and the step, run the one loop (``portnn.train.trainer``), commit."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, replace
from typing import Any

from ..array import host
from ..array.placement import Placement
from ..array.policy import Policy, policy
from ..array.validation import (
    BOOLEAN,
    INDEX,
    POSITIVE,
    AnyOf,
    Choice,
    Function,
    Instance,
    Integer,
    Optional,
    Rule,
)
from ..nn import metrics as metric_names
from ..nn.losses import Loss
from ..optim.optimizer import Optimizer
from ..optim.schedules import Schedule
from . import inputs, source
from .callbacks import Callback, Progress, check_every
from .history import History
from .kernels import Kernels
from .parallel import strategy
from .plan import Plan
from .rates import Rates
from .source import Resident
from .state import TrainingState
from .step import Step
from .totals import Totals
from .trainer import Trainer

COMPILE = Choice(True, False, "auto")
RULES: dict[str, Rule] = {  # fit's keywords with one rule each (checked before any work)
    "epochs": Optional(Integer(0)), "steps": Optional(Integer(0)), "batch_size": Optional(Integer(1)),
    "seed": Optional(INDEX), "shuffle": BOOLEAN, "compile": COMPILE,
    "progress": Optional(Function("a function f(epoch, loss)")),
    "callbacks": Optional(Instance((list, tuple), "a list of portnn.Callback objects")),
    "schedule": AnyOf(Instance(Schedule, "a portnn schedule such as portnn.StepLR(10)"), Choice(None, False)),
    "clip_norm": AnyOf(POSITIVE, Choice(None, False)),
}


def signature(objects: Any) -> str:
    """A key for compiled functions and agreement: the types and configurations of layers, losses, optimizers,
    schedules (or a list of them), as canonical JSON."""
    if isinstance(objects, list | tuple):
        return "[" + ",".join(signature(o) for o in objects) + "]"
    if objects is None:
        return "null"
    return json.dumps([type(objects).__name__, objects.config()], sort_keys=True, default=str)


@dataclass(frozen=True)
class Settings:
    """A fit's arguments after checking, with the defaults of the previous fit resolved."""

    loss: Loss
    optimizer: Optimizer
    names: list[str]  # metrics
    schedule: Schedule | None
    clip_norm: float | None
    callbacks: list[Callback]
    epochs: int | None
    steps: int | None
    batch_size: int | None
    shuffle: bool
    seed: int | None
    compile: bool | str

    @classmethod
    def check(cls, net: Any, **given: Any) -> Settings:
        """Every argument checked (TypeError/ValueError naming it) before anything changes."""
        for name, rule in RULES.items():
            given[name] = rule(given[name], name, "fit")
        loss, optimizer = given["loss"] or net.loss, given["optimizer"] or net.optimizer
        Instance(Loss, "a portnn loss such as portnn.SSE()")(loss, "loss", "fit")
        Instance(Optimizer, "a portnn optimizer such as portnn.SGD(lr=0.1)")(optimizer, "optimizer", "fit")
        callbacks = list(given["callbacks"] or [])
        if not all(isinstance(c, Callback) for c in callbacks):
            raise TypeError(f"fit: callbacks must be a list of portnn.Callback objects, got {given['callbacks']!r}")
        check_every(callbacks, "fit")
        if given["steps"] is not None and given["epochs"] is not None:
            raise ValueError(f"fit: give epochs or steps, not both (got epochs={given['epochs']!r}, "
                             f"steps={given['steps']!r})")
        schedule = net.schedule if given["schedule"] is None else given["schedule"] or None
        if schedule is not None and not isinstance(getattr(optimizer, "lr", None), float):
            raise TypeError(f"fit: schedule {schedule!r} needs an optimizer with a learning rate lr, got {optimizer!r}")
        clip = net.clip_norm if given["clip_norm"] is None else given["clip_norm"] or None
        progress = [Progress(given["progress"])] if given["progress"] is not None else []
        return cls(loss, optimizer, names(net, loss, given["metrics"], "fit"), schedule, clip, progress + callbacks,
                   given["epochs"], given["steps"], given["batch_size"], given["shuffle"], given["seed"],
                   given["compile"])

    def recorded(self, validation: bool) -> list[str]:
        """What each epoch records: 'loss', the metrics, and their 'val_' twins with validation data."""
        return ["loss", *self.names] + (["val_loss", *(f"val_{m}" for m in self.names)] if validation else [])


def fit(
    net: Any, X: Any, y: Any, *, loss: Loss | None = None, optimizer: Optimizer | None = None,
    epochs: int | None = None, steps: int | None = None, batch_size: int | None = None, shuffle: bool = True,
    seed: int | None = None, validation_data: tuple[Any, Any] | None = None, metrics: list[str] | None = None,
    progress: Any = None, callbacks: list[Callback] | None = None, communicator: Any = None,
    compile: bool | str = "auto", schedule: Schedule | bool | None = None, clip_norm: float | bool | None = None,
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
    rolled back to the weights of the last finite step: a fit never returns non-finite weights. Any other exception
    leaves the model exactly as it was before the call.

    With ``communicator`` (``portnn.distributed``; every rank makes the same call on the same data), training is
    data-parallel: the ranks check that they agree on data and settings, rank 0's weights are broadcast, each
    rank computes on its rows of every global batch (the same batches as one process) and one Allreduce per
    step sums the gradients, so all ranks end with the same weights as single-process training.

    ``compile``: True compiles the step where the backend can (``backends/*.toml`` [compile]: JAX's ``jax.jit``,
    torch's ``torch.compile``), False never, 'auto' (default) where the backend file says it pays. Compiled
    training reads the host once per epoch (every step only for a callback that wants steps) with the same
    rollback; data-parallel, the step is compiled in two parts around the Allreduce. ``self.compile_stats`` says
    how many traces it took and how long they took.

    ``schedule`` (``portnn.StepLR``, ``ExponentialLR``, ``CosineAnnealing``; per step or per epoch) sets the
    learning rate of every step from the optimizer's ``lr``, as torch.optim.lr_scheduler; ``clip_norm`` clips
    the gradients to that global L2 norm before each update, as torch.nn.utils.clip_grad_norm_. Both default
    to the previous fit's (so a loaded checkpoint continues its schedule where it stopped: ``schedule_t``
    counts its steps or epochs) and False turns them off. A callback that sets ``model.stop_training``
    (``portnn.EarlyStopping``) ends the fit after the current epoch."""
    settings = Settings.check(net, loss=loss, optimizer=optimizer, epochs=epochs, steps=steps, batch_size=batch_size,
                              seed=seed, shuffle=shuffle, compile=compile, progress=progress, callbacks=callbacks,
                              schedule=schedule, clip_norm=clip_norm, metrics=metrics)
    parallel = strategy(communicator)
    validation = _validation_pair(validation_data)
    before = (net.placement, net.training)
    p, data, val = inputs.training_source(net, X, y, settings.loss, validation)
    for callback in settings.callbacks:  # before anything trains: a callback may refuse this fit's settings
        callback.begin(settings.recorded(val is not None))
    s = _start(net.training, settings, p)
    plan = Plan.of(data.n, settings.batch_size, settings.epochs, settings.steps, s.epoch,
                   (net.seed if s.shuffle_seed is None else s.shuffle_seed) if settings.shuffle else None)
    try:
        s = parallel.begin(net, s, (data.X, data.y), plan)
    except BaseException:
        net.placement, net.training = before
        raise
    net.stop_training = False
    use = policy(p, settings.compile)
    while True:
        step = Step(net.layers, settings.loss, settings.optimizer, p, net.seed, settings.clip_norm,
                    use.compiler.scan if use.compiler.loops else None)
        kernels = _kernels(net, step, use, settings, parallel)
        trainer = Trainer(net, kernels, parallel=parallel, callbacks=settings.callbacks, validate=_validator(
            step, val, settings), rates=Rates(settings.schedule, getattr(settings.optimizer, "lr", 0.0)),
            reads_per_step=use.reads_per_step)
        traced = (use.compiler.traces, use.compiler.compile_seconds)
        net.training = s
        try:
            history = trainer.run(data, plan)
            inputs.remember_shape(net, data.X)
            return history
        except use.compiler.trace_errors() as err:  # raised while tracing: fall back to eager under 'auto'
            if settings.compile is True:
                net.placement, net.training = before  # as before the call (a model placed by this fit, unplaced)
                raise
            net.training = s
            use = _eager(net, use, err)
        except BaseException:
            if not trainer.committed:
                net.placement, net.training = before
            raise
        finally:
            _stats(net, use, traced)


def _validation_pair(validation_data: Any) -> tuple[Any, Any] | None:
    if validation_data is None:
        return None
    if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
        raise TypeError(f"fit: validation_data must be a pair (X_val, y_val), got {type(validation_data).__name__}")
    return validation_data[0], validation_data[1]


def names(net: Any, loss: Loss, given: list[str] | None, where: str) -> list[str]:
    """The metric names of a call: the given ones, the last fit's for its loss, or the loss's defaults."""
    if given is not None:
        return metric_names.check(given, where)
    if loss is net.loss and net.metrics is not None:
        return list(net.metrics)
    return metric_names.defaults(loss)


def _start(s: TrainingState, settings: Settings, p: Placement) -> TrainingState:
    """The state a fit starts from: this fit's settings; fresh optimizer state for a new optimizer, a schedule
    counter from 0 for a new schedule."""
    opt_state = s.optimizer_state
    if s.optimizer is not settings.optimizer or not opt_state:
        opt_state = settings.optimizer.init_state(s.params, p.xp, p.device)
    return replace(s, loss=settings.loss, optimizer=settings.optimizer, metrics=settings.names,
                   schedule=settings.schedule, clip_norm=settings.clip_norm, optimizer_state=opt_state,
                   schedule_t=s.schedule_t if settings.schedule is s.schedule else 0,
                   shuffle_seed=s.shuffle_seed if settings.seed is None else settings.seed)


def _kernels(net: Any, step: Step, use: Policy, settings: Settings, parallel: Any) -> Kernels:
    """The kernels of this configuration, reused by later fits (also after load_state_dict): a second fit, or one
    with other epochs or steps, does not trace again."""
    p = step.placement
    key = ("fit", signature(net.layers), signature(step.loss), signature(step.optimizer), p.describe(),
           str(p.device), net.seed, tuple(settings.names), use.compiler.method, step.clip_norm,
           settings.schedule is not None, type(parallel).__name__)
    if key not in net._compiled:
        net._compiled[key] = Kernels(step, use.compiler, settings.names, parallel)
    kernels: Kernels = net._compiled[key]
    kernels.parallel = parallel
    return kernels


def _eager(net: Any, use: Policy, err: BaseException) -> Policy:
    warnings.warn(f"fit: {use.compiler.method} cannot compile this model's step ({type(err).__name__}: "
                  f"{str(err).splitlines()[0]}); training eagerly (pass compile=False to say so)", UserWarning,
                  stacklevel=3)
    net._compiled = {k: v for k, v in net._compiled.items() if getattr(v, "compiler", None) is not use.compiler}
    return policy(net.placement, False)


def _stats(net: Any, use: Policy, traced: tuple[int, float]) -> None:
    compiler = use.compiler
    net.compile_stats = {} if not compiler.compiles else {
        "method": compiler.method, "traces": compiler.traces - traced[0],
        "compile_seconds": compiler.compile_seconds - traced[1], "traces_total": compiler.traces}


def _validator(step: Step, val: Resident | None, settings: Settings) -> Any:
    if val is None:
        return None

    def validate(s: TrainingState) -> dict[str, float]:
        return totals(step, val, settings.names, settings.batch_size, "fit (validation_data)", None, s.params,
                      s.state)

    return validate


def evaluate(net: Any, X: Any, y: Any, *, loss: Loss | None = None, metrics: list[str] | None = None,
             batch_size: int | None = None, compile: bool | str = "auto") -> dict[str, float]:
    """Loss and metrics of the model on (X, y), e.g. {'loss': 0.08, 'accuracy': 0.97}; the weights are unchanged.

    ``loss``/``metrics`` default to those of the last ``fit`` (accuracy for classification losses)."""
    loss = loss or net.loss
    if not isinstance(loss, Loss):
        raise TypeError(f"evaluate: needs a portnn loss: pass loss= or call fit first, got {loss!r}")
    Optional(Integer(1))(batch_size, "batch_size", "evaluate")
    COMPILE(compile, "compile", "evaluate")
    chosen = names(net, loss, metrics, "evaluate")
    p, x_all, y_all, _ = inputs.training_data(net, X, y, loss, "evaluate")
    return totals(net.step(loss), Resident(x_all, y_all, p), chosen, batch_size, "evaluate",
                  net._inference(compile), net.params, net.state)


def totals(step: Step, data: Resident, chosen: list[str], batch_size: int | None, where: str, forward: Any,
           params: Any, state: Any) -> dict[str, float]:
    """The loss and metrics of the model (``params``, ``state``) over ``data``'s rows in order, in batches."""
    n = data.n
    loss = step.loss
    assert loss is not None
    sums, start, ctx = Totals(loss, chosen, step.inference.xp), 0, step.inference
    forward = forward or (lambda params, state, x: step.forward(params, state, x)[0])
    for xb, yb in source.batches(data, Plan.of(n, batch_size, 1, None, 0, None), 0):
        out = forward(params, state, xb)
        value = host.to_float(loss.forward(out, yb, ctx)[0])
        if not math.isfinite(value):
            raise FloatingPointError(f"{where}: loss is {value} on rows {start} to {start + xb.shape[0] - 1}: "
                                     "the model's outputs overflow on these inputs")
        sums.add(value, xb.shape[0], out, yb)
        start += xb.shape[0]
    return sums.result(n)
