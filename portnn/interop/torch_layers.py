"""The torch.nn modules that compute portnn layers torch has no single module for; each carries the name of the
portnn layer it computes (``to_torch`` builds them, ``from_torch`` reads them back). This module imports torch:
``torch_modules`` imports it only when called, and re-exports these classes (``torch_modules.GRU``).

- ``Residual(*body)``: an nn.Sequential whose forward is x + body(x); its keys are its body's ('0.weight').
- ``PositionalEmbedding(max_length, dim, std=0.02)``: a parameter ``weight`` (max_length, dim); forward adds
  weight[:T] to every (N, T, dim) sequence (GPT-2's ``wpe``, which torch writes by hand). ``std`` is the N(0, std^2)
  initialisation's, kept so that the portnn layer comes back with it.
- ``GRU``/``LSTM(input_size, hidden_size, bidirectional=False, return_sequences=False, **options)``: nn.GRU/nn.LSTM
  with batch_first=True (one layer unless ``options`` say otherwise), the same parameters (weight_ih_l0, ..., the
  ``_reverse`` ones) and torch's own initialisation, whose forward returns one tensor as portnn's does: the output
  sequence (N, T, H * directions), or torch's h_n with the last layer's directions side by side (N, H * directions).
  A trained nn.GRU/nn.LSTM (batch_first=True) loads into one of the same settings with ``load_state_dict``.
- ``MultiHeadAttention(embed_dim, num_heads, causal=False, dropout=0.0, bias=True, **options)``:
  nn.MultiheadAttention with batch_first=True whose forward(x) is self-attention, attn(x, x, x, attn_mask=future
  steps when ``causal``, need_weights=False)[0]; its keys are nn.MultiheadAttention's.
- ``LastStep``: x[:, -1]; ``GlobalAvgPoolTime``: the mean over time, x.mean(dim=1).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Residual(nn.Sequential):
    """x -> x + body(x), the body being this Sequential's children: keys '0.weight', as portnn's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The skip connection around the inner stack (its output shape must equal its input's)."""
        return x + super().forward(x)


class PositionalEmbedding(nn.Module):
    """(N, T, dim) -> x + weight[:T]: a learned position table (max_length, dim), T <= max_length."""

    def __init__(self, max_length: int, dim: int, std: float = 0.02, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.max_length, self.dim, self.std = max_length, dim, std
        self.weight = nn.Parameter(torch.empty((max_length, dim), device=device, dtype=dtype))
        nn.init.normal_(self.weight, std=std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Row t of the table added to every sequence's step t."""
        return x + self.weight[:x.shape[1]]

    def extra_repr(self) -> str:
        return f"{self.max_length}, {self.dim}, std={self.std}"


def _last(hidden: torch.Tensor, directions: int) -> torch.Tensor:
    """torch's h_n (layers * directions, N, H) -> (N, H * directions): the last layer's directions side by side."""
    return torch.cat(tuple(hidden[-directions:]), dim=1)


class GRU(nn.GRU):
    """nn.GRU(batch_first=True) returning the output sequence or the last hidden state (as portnn); ``options``
    go to nn.GRU (portnn's layer is the default: one layer, with biases)."""

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = False, return_sequences: bool = False,
                 **options: Any) -> None:
        super().__init__(input_size, hidden_size, batch_first=True, bidirectional=bidirectional, **options)
        self.return_sequences = return_sequences

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """(N, T, input_size) -> (N, T, H * directions), or (N, H * directions) without ``return_sequences``."""
        out, hidden = super().forward(x)
        return out if self.return_sequences else _last(hidden, 2 if self.bidirectional else 1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, return_sequences={self.return_sequences}"


class LSTM(nn.LSTM):
    """nn.LSTM(batch_first=True) returning the output sequence or the last hidden state (as portnn); ``options``
    go to nn.LSTM (portnn's layer is the default: one layer, with biases)."""

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = False, return_sequences: bool = False,
                 **options: Any) -> None:
        super().__init__(input_size, hidden_size, batch_first=True, bidirectional=bidirectional, **options)
        self.return_sequences = return_sequences

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """(N, T, input_size) -> (N, T, H * directions), or (N, H * directions) without ``return_sequences``."""
        out, (hidden, _) = super().forward(x)
        return out if self.return_sequences else _last(hidden, 2 if self.bidirectional else 1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, return_sequences={self.return_sequences}"


class MultiHeadAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention(batch_first=True) as a layer: forward(x) is self-attention, masked when ``causal``;
    ``options`` go to nn.MultiheadAttention."""

    def __init__(self, embed_dim: int, num_heads: int, causal: bool = False, dropout: float = 0.0, bias: bool = True,
                 **options: Any) -> None:
        super().__init__(embed_dim, num_heads, dropout=dropout, bias=bias, batch_first=True, **options)
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """(N, T, E) -> (N, T, E); with ``causal`` step t attends to steps <= t (True in attn_mask: masked out)."""
        steps = x.shape[1]
        mask = torch.ones((steps, steps), dtype=torch.bool, device=x.device).triu(1) if self.causal else None
        return super().forward(x, x, x, attn_mask=mask, need_weights=False)[0]

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, causal={self.causal}, dropout={self.dropout}"


class LastStep(nn.Module):
    """(N, T, F) -> (N, F): the last step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1]


class GlobalAvgPoolTime(nn.Module):
    """(N, T, F) -> (N, F): the mean over time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


__all__ = ["GRU", "LSTM", "GlobalAvgPoolTime", "LastStep", "MultiHeadAttention", "PositionalEmbedding", "Residual"]
