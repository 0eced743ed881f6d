"""Long short-term memory with PyTorch's equations and layout (torch.nn.LSTM, batch_first=True, one layer):

    i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (W_i* x + b_i* + W_h* h + b_h*)   gates stacked (i, f, g, o)
    c' = f * c + i * g;   h' = o * tanh(c')

The cell state starts at zero and is not an output. Backpropagation through time runs the same loop backwards
(``scan`` with reverse=True); see ``recurrent``.
"""

from __future__ import annotations

from typing import Any

from ..array.types import Array
from .activations import sigmoid
from .layer import Context
from .recurrent import _Recurrent
from .scan import scan


class LSTM(_Recurrent):
    """(N, T, input_size) -> (N, T, H * directions) with ``return_sequences``, else the last step (N, H * dirs)."""

    gates = 4

    def _steps(self, w: dict[str, Array], gi: Array, ctx: Context) -> tuple[Array, Any]:
        xp, h = ctx.xp, self.hidden_size
        w_hh, b_hh = w["weight_hh"].mT, w["bias_hh"]

        def step(carry: Any, gi_t: Array) -> tuple[Any, Any]:
            hp, cp = carry
            a = gi_t + (hp @ w_hh + b_hh)
            i, f = sigmoid(a[:, :h], xp), sigmoid(a[:, h:2 * h], xp)
            g, o = xp.tanh(a[:, 2 * h:3 * h]), sigmoid(a[:, 3 * h:], xp)
            c = f * cp + i * g
            tc = xp.tanh(c)
            hn = o * tc
            return (hn, c), (hn, (cp, i, f, g, o, tc))

        zeros = xp.zeros((gi.shape[1], h), dtype=gi.dtype, device=ctx.device)
        _, (hs, gates) = scan(ctx, step, (zeros, zeros), gi, gi.shape[0])
        return hs, gates

    def _steps_back(self, w: dict[str, Array], saved: Any, dhs: Array, hprev: Array,
                    ctx: Context) -> tuple[Array, Array]:
        xp = ctx.xp
        w_hh = w["weight_hh"]

        def step(carry: Any, inputs: Any) -> tuple[Any, Any]:
            dh, dc = carry
            dh_out, (cp, i, f, g, o, tc) = inputs
            dh = dh + dh_out
            dc = dc + dh * o * (1.0 - tc * tc)  # through h' = o * tanh(c')
            da = xp.concat([dc * g * i * (1.0 - i), dc * cp * f * (1.0 - f), dc * i * (1.0 - g * g),
                            dh * tc * o * (1.0 - o)], axis=1)
            return (da @ w_hh, dc * f), da

        zeros = xp.zeros(dhs.shape[1:], dtype=dhs.dtype, device=ctx.device)
        _, da = scan(ctx, step, (zeros, zeros), (dhs, saved), dhs.shape[0], reverse=True)
        return da, da  # one pre-activation per gate: the input and hidden sides share it
