"""The device-side training functions: one step committed only when finite, an epoch of steps, and a run of
full-batch epochs, each built once per configuration and compiled by the ``Compiler`` (as they are when it is eager).

The carry is the model {'params', 'state', 'opt'}, the model before the last committed update ('prev'), and an
integer record (failed, kind, epoch, batch): each step computes ``ok`` (finite loss and finite new model) on the
device and commits with ``where(ok, new, old)``; once a step failed, the flag makes every later step a no-op and the
record keeps the first failure. Each step also yields one row [loss, metric counts...] in the model's dtype; the host
sums them in float64 as eager training sums its host reads, so both record the same history.

Data-parallel training splits the step around the gradient Allreduce: ``gradients`` (this rank's rows, packed into
one flat buffer), the collective on the host or a device buffer, then ``commit`` (unpack, update, commit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..array import tree
from ..array.compile import Compiler
from ..array.types import Array
from ..nn import metrics
from .step import Step

LOSS, UPDATE = 1, 2  # kinds of failure
FAILED, KIND, EPOCH, BATCH = range(4)  # the integer record
# full-batch epochs per compiled run call (rows of its ys buffer): memory does not grow with a run, and a small net's
# run pays its host read and dispatch once per 2048 epochs (``portnn bench --only compiled``: the compiled seed row)
CAPACITY = 2048


class Kernels:
    """The training functions of one configuration (step, metrics, compiler); kept by the model so that a later fit
    of the same configuration reuses what was compiled (epochs and steps are arguments, never baked in)."""

    def __init__(self, step: Step, compiler: Compiler, names: list[str], parallel: Any = None) -> None:
        self.step, self.compiler, self.names, self.parallel = step, compiler, names, parallel
        ctx = step.training
        self.xp, self.device, self.dtype = ctx.xp, ctx.device, ctx.dtype
        self.index = step.placement.index_dtype
        assert step.loss is not None
        self._built: dict[str, Callable[..., Any]] = {}

    # ---- the carry --------------------------------------------------------------------------------------------
    def carry(self, model: dict[str, Any]) -> dict[str, Any]:
        """The carry of ``model`` {'params', 'state', 'opt'} (copied where compiled calls donate their buffers)."""
        xp, compiler = self.xp, self.compiler
        if compiler.donate:
            model = compiler.copy_tree(model, xp, self.device)
        # distinct buffers when compiled: torch.compile guards on which inputs alias, and traced a second time
        prev = compiler.copy_tree(model, xp, self.device) if compiler.compiles else model
        record = xp.zeros((4,), dtype=self.index, device=self.device)
        return {**model, "prev": prev, "record": record}

    # ---- one step ---------------------------------------------------------------------------------------------
    def counts(self, out: Array, yb: Array) -> list[Array]:
        """The metric counts of one batch (0-d arrays in the model's dtype), in the order of ``names``."""
        xp = self.xp
        return [xp.astype(metrics.METRICS[n](out, yb, xp, self.step.loss), self.dtype) for n in self.names]

    def _row(self, value: Array, out: Array, yb: Array) -> Array:
        """[loss, metric counts...] of one step, in the model's dtype."""
        return self.xp.stack([self.xp.astype(value, self.dtype), *self.counts(out, yb)])

    def _commit(self, carry: dict[str, Any], value: Array, grads: Any, new_state: Any, out: Array, yb: Array,
                epoch: Array, batch: Array, lr: Array | None) -> tuple[dict[str, Any], Array]:
        """Apply ``grads`` and commit the new model only when everything is finite (see the module docstring)."""
        xp, step = self.xp, self.step
        params, state, opt, record = carry["params"], carry["state"], carry["opt"], carry["record"]
        new_params, new_opt = step.apply(params, grads, opt, lr)
        loss_ok = xp.isfinite(value)
        failed = record[FAILED] != 0
        ok = ~failed & loss_ok & tree.finite(xp, self.device, new_params, new_state, new_opt)
        first = ~failed & ~ok
        index = self.index
        kind = xp.where(loss_ok, xp.asarray(UPDATE, dtype=index, device=self.device), LOSS)
        record = xp.stack([xp.astype(failed | ~ok, index), xp.where(first, kind, record[KIND]),
                           xp.where(first, xp.astype(epoch, index), record[EPOCH]),
                           xp.where(first, xp.astype(batch, index), record[BATCH])])
        model = {"params": params, "state": state, "opt": opt}
        new = tree.where(xp, ok, {"params": new_params, "state": new_state, "opt": new_opt}, model)
        return {**new, "prev": tree.where(xp, ok, model, carry["prev"]), "record": record}, self._row(value, out, yb)

    def body(self, carry: dict[str, Any], xb: Array, yb: Array, epoch: Array, batch: Array,
             lr: Array | None) -> tuple[dict[str, Any], Array]:
        """One local training step on a batch: (new carry, its row)."""
        value, grads, new_state, out = self.step.gradients(carry["params"], carry["state"], xb, yb, (epoch, batch))
        return self._commit(carry, value, grads, new_state, out, yb, epoch, batch, lr)

    # ---- the functions ----------------------------------------------------------------------------------------
    def function(self, name: str) -> Callable[..., Any]:
        """The function ``name``, built and compiled once: 'step' (one step on X, y or on their rows ``idx``),
        'epoch' (``count`` steps on the batches of ``idx``), 'run' (``count`` full-batch epochs), and for
        data-parallel training 'gradients' and 'commit'. Each returns (carry, rows)."""
        if name not in self._built:
            table: dict[str, Callable[..., Any]] = {
                "step": self._step, "epoch": self._epoch, "run": self._run, "gradients": self._gradients,
                "commit": self._commit_packed}
            donate = (0,) if name != "gradients" else ()
            self._built[name] = self.compiler.jit(table[name], donate=donate)
        return self._built[name]

    def _step(self, carry: Any, X: Array, y: Array, ctrl: Array, idx: Array | None, lr: Array | None) -> Any:
        xb, yb = (X, y) if idx is None else (self.xp.take(X, idx, axis=0), self.xp.take(y, idx, axis=0))
        return self.body(carry, xb, yb, ctrl[0], ctrl[1], lr)

    def _epoch(self, carry: Any, X: Array, y: Array, ctrl: Array, idx: Array, lrs: Array | None) -> Any:
        """ctrl = (epoch, count): the first ``count`` batches of ``idx`` (batches, size)."""
        xp = self.xp

        def one(b: Any, c: Any) -> Any:
            rows = idx[b, ...]
            return self.body(c, xp.take(X, rows, axis=0), xp.take(y, rows, axis=0), ctrl[0], b,
                             None if lrs is None else lrs[b])

        return self.compiler.loop(one, carry, ctrl[1], idx.shape[0])

    def _run(self, carry: Any, X: Array, y: Array, ctrl: Array, lrs: Array | None) -> Any:
        """ctrl = (first epoch, count): ``count`` full-batch epochs (at most CAPACITY)."""
        def one(e: Any, c: Any) -> Any:
            return self.body(c, X, y, ctrl[0] + e, ctrl[0] * 0, None if lrs is None else lrs[e])

        return self.compiler.loop(one, carry, ctrl[1], CAPACITY)

    def _gradients(self, carry: Any, xb: Array, yb: Array, ctrl: Array) -> Any:
        """Data-parallel, before the Allreduce: (this rank's weighted gradients and loss as one flat buffer, the new
        state, this rank's output and targets)."""
        return self.parallel.local(self.step, carry["params"], carry["state"], xb, yb, (ctrl[0], ctrl[1]),
                                   self.compiler.host_call)

    def _commit_packed(self, carry: Any, total: Array, new_state: Any, out: Array, y_local: Array, ctrl: Array,
                       lr: Array | None) -> Any:
        """Data-parallel, after the Allreduce: unpack the summed buffer, update, commit."""
        value, grads = self.parallel.unpack(total, carry["params"], self.step)
        return self._commit(carry, value, grads, new_state, out, y_local, ctrl[0], ctrl[1], lr)
