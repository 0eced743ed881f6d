"""Gated recurrent unit with PyTorch's equations and layout (torch.nn.GRU, batch_first=True, one layer):

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)        gates stacked (r, z, n) in weight_ih / weight_hh
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))     (b_hn inside the product, as torch)
    h' = (1 - z) * n + z * h

Backpropagation through time runs the same loop backwards (``scan`` with reverse=True); see ``recurrent``.
"""

from __future__ import annotations

from typing import Any

from ..array.types import Array
from .activations import sigmoid
from .layer import Context
from .recurrent import _Recurrent
from .scan import scan


class GRU(_Recurrent):
    """(N, T, input_size) -> (N, T, H * directions) with ``return_sequences``, else the last step (N, H * dirs)."""

    gates = 3

    def _steps(self, w: dict[str, Array], gi: Array, ctx: Context) -> tuple[Array, Any]:
        xp, h = ctx.xp, self.hidden_size
        w_hh, b_hh = w["weight_hh"].mT, w["bias_hh"]

        def step(hp: Array, gi_t: Array) -> tuple[Array, Any]:
            gh = hp @ w_hh + b_hh
            r = sigmoid(gi_t[:, :h] + gh[:, :h], xp)
            z = sigmoid(gi_t[:, h:2 * h] + gh[:, h:2 * h], xp)
            ghn = gh[:, 2 * h:]
            n = xp.tanh(gi_t[:, 2 * h:] + r * ghn)
            hn = (1.0 - z) * n + z * hp
            return hn, (hn, (r, z, n, ghn))

        h0 = xp.zeros((gi.shape[1], h), dtype=gi.dtype, device=ctx.device)
        _, (hs, gates) = scan(ctx, step, h0, gi, gi.shape[0])
        return hs, gates

    def _steps_back(self, w: dict[str, Array], saved: Any, dhs: Array, hprev: Array,
                    ctx: Context) -> tuple[Array, Array]:
        xp = ctx.xp
        w_hh = w["weight_hh"]

        def step(dh: Array, inputs: Any) -> tuple[Array, Any]:
            dh_out, hp, (r, z, n, ghn) = inputs
            dh = dh + dh_out
            dan = dh * (1.0 - z) * (1.0 - n * n)  # through n = tanh(an)
            dar = dan * ghn * r * (1.0 - r)
            daz = dh * (hp - n) * z * (1.0 - z)
            da_i = xp.concat([dar, daz, dan], axis=1)
            da_h = xp.concat([dar, daz, dan * r], axis=1)  # the hidden side of n is scaled by r
            return dh * z + da_h @ w_hh, (da_i, da_h)

        dh0 = xp.zeros(dhs.shape[1:], dtype=dhs.dtype, device=ctx.device)
        _, (da_i, da_h) = scan(ctx, step, dh0, (dhs, hprev, saved), dhs.shape[0], reverse=True)
        return da_i, da_h
