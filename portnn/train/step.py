"""The one training step: forward -> loss -> backward -> update, as pure functions of arrays, built once per fit.

    gradients(params, state, x, y, key) -> (loss, grads, state, out)     no host reads, no branching on values
    apply(params, grads, opt_state, lr) -> (params, opt_state)           clipping, then the optimizer's pure update
    step = apply . gradients: (params, state, opt_state, x, y, key, lr) -> (params, state, opt_state, loss, out)

Nothing here reads the host, branches on array values or mutates its inputs or the model: the loop around it
(``portnn.train.trainer``) decides what to read and when. Data-parallel training calls ``gradients`` on its rows, sums
the gradients across ranks, then calls ``apply``; gradient checks, parity traces and benchmarks call these too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..array.placement import Placement
from ..array.types import Array, Params
from ..nn.layer import Context, Layer, Sync
from ..nn.losses import Loss
from ..optim.clip import clip_by_global_norm
from ..optim.optimizer import Optimizer, OptState


class Step:
    """The step of one model: its layers, loss and optimizer, where it computes, and the model's seed (dropout
    keys are (seed, layer index, epoch, batch))."""

    def __init__(self, layers: list[Layer], loss: Loss | None, optimizer: Optimizer | None, placement: Placement,
                 seed: int, clip_norm: float | None = None, scan: Any = None) -> None:
        self.layers, self.loss, self.optimizer, self.seed = tuple(layers), loss, optimizer, seed
        if optimizer is not None:
            optimizer.bind(self.layers)  # an optimizer whose update depends on the layers (AdamW's decay)
        self.clip_norm = clip_norm  # gradient clipping by global norm before the update (None: none)
        self.placement = p = placement
        # ``scan``: the compiler's loop for recurrent layers (jax.lax.scan under jax.jit); None: a Python loop
        self.training = Context(p.xp, p.device, p.dtype, training=True, scan=scan)
        self.inference = Context(p.xp, p.device, p.dtype, training=False, scan=scan)
        self.first = replace(self.training, need_dx=False)  # the first layer: no gradient for the input
        self.keyed = frozenset(i for i, layer in enumerate(layers) if layer.keyed)
        self.stateful = frozenset(i for i, layer in enumerate(layers) if layer.state_shapes())
        self.plain = not self.keyed and not self.stateful  # every layer sees its parameters and one context

    def _inputs(self, params: Params, state: Params) -> Params:
        """What each layer's forward/backward receives: its parameters, and its state beside them if it has any."""
        if not self.stateful:
            return params
        return [{**params[i], **state[i]} if i in self.stateful else params[i] for i in range(len(params))]

    def forward(self, params: Params, state: Params, x: Array, key: tuple[int, int] | None = None,
                rows: tuple[int, int, int] | None = None, sync: Sync | None = None) -> tuple[Array, list[Any]]:
        """(output, what each layer saved); ``key`` = (epoch, batch) while training, None in inference; ``rows`` and
        ``sync``: a data-parallel rank's part of the global batch."""
        inputs, saved = (self._inputs(params, state) if self.stateful else params), []
        if (key is None or not self.keyed) and sync is None:  # the common case: one context for every layer
            ctx = self.inference if key is None else self.training
            for layer, p in zip(self.layers, inputs):  # noqa: B905 - one entry per layer by construction
                x, s = layer.forward(p, x, ctx)
                saved.append(s)
            return x, saved
        base = self.training if sync is None else replace(self.training, rows=rows, sync=sync)
        for i, (layer, p) in enumerate(zip(self.layers, inputs, strict=True)):
            ctx = replace(base, key=(self.seed, i, *key), rows=rows) if key is not None and i in self.keyed else base
            x, s = layer.forward(p, x, ctx)
            saved.append(s)
        return x, saved

    def gradients(self, params: Params, state: Params, x: Array, y: Array, key: tuple[int, int],
                  rows: tuple[int, int, int] | None = None,
                  sync: Sync | None = None) -> tuple[Array, Params, Params, Array]:
        """(loss, gradients, new state, output) of one training batch; the loss is a 0-d array."""
        loss, layers = self.loss, self.layers
        assert loss is not None, "Step.gradients needs a loss"
        if self.plain and sync is None:  # the common case, inlined: it is the hot path of small networks
            ctx, out, saved = self.training, x, []
            for layer, p in zip(layers, params):  # noqa: B905 - one entry per layer by construction
                out, kept = layer.forward(p, out, ctx)
                saved.append(kept)
        else:
            ctx = self.training if sync is None else replace(self.training, rows=rows, sync=sync)
            out, saved = self.forward(params, state, x, key, rows, sync)
        value, loss_saved = loss.forward(out, y, ctx)
        dy = loss.backward(loss_saved, ctx)
        inputs = self._inputs(params, state) if self.stateful else params
        grads: Params = [{}] * len(layers)
        for i in range(len(layers) - 1, 0, -1):
            dy, grads[i] = layers[i].backward(inputs[i], saved[i], dy, ctx)
        first = self.first if sync is None else replace(ctx, need_dx=False)  # no gradient for the input
        _, grads[0] = layers[0].backward(inputs[0], saved[0], dy, first)
        if self.stateful:
            state = [layers[i].update_state(inputs[i], saved[i], ctx) if i in self.stateful else s
                     for i, s in enumerate(state)]
        return value, grads, state, out

    def apply(self, params: Params, grads: Params, opt_state: OptState, lr: Any = None) -> tuple[Params, OptState]:
        """The optimizer's update of ``params`` by ``grads`` (clipped to the global norm ``clip_norm`` first), at
        rate ``lr`` (a schedule's; None: the optimizer's own)."""
        assert self.optimizer is not None, "Step.apply needs an optimizer"
        if self.clip_norm is not None:
            grads = clip_by_global_norm(grads, self.clip_norm, xp=self.training.xp, device=self.training.device)[0]
        return self.optimizer.update(params, grads, opt_state, lr)

    def __call__(self, params: Params, state: Params, opt_state: OptState, x: Array, y: Array,
                 key: tuple[int, int], lr: Any = None) -> tuple[Params, Params, OptState, Array, Array]:
        value, grads, state, out = self.gradients(params, state, x, y, key)
        params, opt_state = self.apply(params, grads, opt_state, lr)
        return params, state, opt_state, value, out
