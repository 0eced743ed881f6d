"""What GRU and LSTM share: PyTorch's parameter layout and initialisation, batch-first shapes, both directions, and
the input-side half of the math (the input projection of every step at once, and its gradients after the loop).

A recurrent layer maps (N, T, input_size) to (N, T, hidden_size * directions) with ``return_sequences``, else to the
last output (N, hidden_size * directions): for ``bidirectional`` that is torch's h_n of each direction, the forward
direction's output at t = T-1 beside the reverse direction's at t = 0 (its last step). One direction's parameters
are ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih`` (G*H), ``bias_hh`` (G*H) with the G gates stacked in
torch's order; the reverse direction's carry the suffix ``_reverse``. torch's names insert the layer number:
``weight_ih`` <-> ``weight_ih_l0``, ``weight_ih_reverse`` <-> ``weight_ih_l0_reverse`` (one layer; stack layers
with ``return_sequences=True`` for more). Every weight and bias starts U(-1/sqrt(H), 1/sqrt(H)), drawn on the host in
torch's parameter order. The initial state is zeros.

A subclass writes one direction's cell: ``_steps(w, gi, ctx) -> (hs, saved)`` runs the time loop over the
projected inputs gi (T, N, G*H) through ``scan`` and returns every output (T, N, H); ``_steps_back(w, saved, dhs,
hprev, ctx) -> (da_i, da_h)`` runs it backwards from the output gradients and returns the gradients of the gates'
input-side and hidden-side pre-activations, (T, N, G*H) each, from which this module forms every gradient.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from ..array.types import Array
from ..array.validation import BOOLEAN, COUNT, Checked, Rule
from .layer import Context, Grads, Layer

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # one direction's parameters, in torch's order


def rows(a: Array, xp: Any) -> Array:
    """(..., k) -> (rows, k)."""
    return xp.reshape(a, (-1, a.shape[-1]))


class _Recurrent(Checked, Layer):
    """A one-layer recurrent network over batch-first sequences; subclasses give the cell (see the module)."""

    gates: ClassVar[int]  # G: gate blocks stacked in each weight
    constraints: ClassVar[dict[str, Rule]] = {"input_size": COUNT, "hidden_size": COUNT,
                                              "return_sequences": BOOLEAN, "bidirectional": BOOLEAN}

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = False,
                 bidirectional: bool = False) -> None:
        self.input_size, self.hidden_size = input_size, hidden_size
        self.return_sequences, self.bidirectional = return_sequences, bidirectional

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        gh, i, h = self.gates * self.hidden_size, self.input_size, self.hidden_size
        one = {"weight_ih": (gh, i), "weight_hh": (gh, h), "bias_ih": (gh,), "bias_hh": (gh,)}
        return {name + s: shape for s in self._suffixes() for name, shape in one.items()}

    def init(self, rng: Any) -> dict[str, Any]:
        """U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias, drawn in torch's order (as ``param_shapes``)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        return {name: rng.uniform(-bound, bound, shape) for name, shape in self.param_shapes().items()}

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) != 3 or shape[2] != self.input_size or shape[1] < 1:
            raise ValueError(f"{where} ({self!r}) expects input of shape (batch, time >= 1, {self.input_size}), got "
                             f"shape {tuple(shape)}")
        width = self.hidden_size * len(self._suffixes())
        return (shape[0], shape[1], width) if self.return_sequences else (shape[0], width)

    def _steps(self, w: dict[str, Array], gi: Array, ctx: Context) -> tuple[Array, Any]:
        raise NotImplementedError

    def _steps_back(self, w: dict[str, Array], saved: Any, dhs: Array, hprev: Array,
                    ctx: Context) -> tuple[Array, Array]:
        raise NotImplementedError

    # forward: per direction, project every step's input at once, run the cell over time, outputs back in time order
    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        xp = ctx.xp
        xs = xp.permute_dims(x, (1, 0, 2))  # time-major (T, N, I)
        outs, saved = [], []
        for s in self._suffixes():
            seq = xp.flip(xs, axis=0) if s else xs  # the reverse direction reads the sequence backwards
            w = {name: params[name + s] for name in NAMES}
            gi = seq @ w["weight_ih"].mT + w["bias_ih"]
            hs, kept = self._steps(w, gi, ctx)
            outs.append(xp.flip(hs, axis=0) if s else hs)
            saved.append((seq, hs, kept))
        if self.return_sequences:
            y = xp.permute_dims(xp.concat(outs, axis=2), (1, 0, 2))
        else:  # each direction's last step: t = T-1 forwards, t = 0 backwards (torch's h_n)
            y = xp.concat([outs[0][-1, ...], *[h[0, ...] for h in outs[1:]]], axis=1)
        return y, saved

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        xp, h = ctx.xp, self.hidden_size
        found: Grads = {}
        dxs = None
        for d, s in enumerate(self._suffixes()):
            seq, hs, kept = saved[d]
            if self.return_sequences:
                dhs = xp.permute_dims(dy[:, :, d * h:(d + 1) * h], (1, 0, 2))
                dhs = xp.flip(dhs, axis=0) if s else dhs  # in this direction's processing order
            else:  # only the last processed step has an output
                last = dy[:, d * h:(d + 1) * h]
                dhs = xp.concat([xp.zeros((hs.shape[0] - 1, *last.shape), dtype=dy.dtype, device=ctx.device),
                                 last[None, ...]], axis=0)
            w = {name: params[name + s] for name in NAMES}
            hprev = xp.concat([xp.zeros((1, *hs.shape[1:]), dtype=hs.dtype, device=ctx.device), hs[:-1, ...]], axis=0)
            da_i, da_h = self._steps_back(w, kept, dhs, hprev, ctx)
            da_i2, da_h2 = rows(da_i, xp), rows(da_h, xp)  # every (step, sample) pair is one row
            found.update({"weight_ih" + s: da_i2.mT @ rows(seq, xp), "weight_hh" + s: da_h2.mT @ rows(hprev, xp),
                          "bias_ih" + s: xp.sum(da_i2, axis=0), "bias_hh" + s: xp.sum(da_h2, axis=0)})
            if ctx.need_dx:
                dseq = da_i @ w["weight_ih"]
                dseq = xp.flip(dseq, axis=0) if s else dseq
                dxs = dseq if dxs is None else dxs + dseq
        grads = {name: found[name] for name in self.param_shapes()}  # torch's order
        return (xp.permute_dims(dxs, (1, 0, 2)) if dxs is not None else None), grads

    def config(self) -> dict[str, Any]:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "return_sequences": self.return_sequences, "bidirectional": self.bidirectional}
