"""minGPT's GPT as a portnn Sequential, and its sort demo's score: the fraction of prompts sorted correctly by greedy
decoding."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..array import host
from ..nn import GELU, Dense, Dropout, Embedding, Layer, LayerNorm, MultiHeadAttention, PositionalEmbedding, Residual
from ..train.generate import generate
from ..train.model import Sequential


def gpt(vocab: int, length: int, width: int, heads: int, blocks: int, dropout: float, seed: int,
        attention_bias: bool = True) -> Sequential:
    """Token + position embeddings, dropout, ``blocks`` pre-norm blocks [x + dropout(attention(norm(x))),
    x + dropout(mlp(norm(x)))] with causal attention and a 4x wide GELU MLP, a final LayerNorm and a Dense head to
    ``vocab`` logits: (N, T <= length) ids -> (N, T, vocab). minGPT's 'gpt-nano' is width 48, 3 heads, 3 blocks.
    ``attention_bias`` False drops the attention's biases: the keys' bias cannot change a softmax over keys, so its
    gradient is rounding noise, which Adam scales up to full steps (it would differ from backend to backend)."""
    layers: list[Layer] = [Embedding(vocab, width), PositionalEmbedding(length, width), Dropout(dropout)]
    for _ in range(blocks):
        layers += [Residual(LayerNorm(width), MultiHeadAttention(width, heads, causal=True, dropout=dropout,
                                                                 bias=attention_bias),
                            Dropout(dropout)),
                   Residual(LayerNorm(width), Dense(width, 4 * width), GELU(), Dense(4 * width, width),
                            Dropout(dropout))]
    return Sequential(*layers, LayerNorm(width), Dense(width, vocab), seed=seed)


def sorted_correctly(model: Sequential, X: np.ndarray, length: int) -> float:
    """The fraction of the prompts X[:, :length] (host ids) whose ``length`` greedily generated ids are the prompt
    sorted, as minGPT's demo scores its sort model."""
    p = model.placement
    prompts = X[:, :length]
    ids: Any = prompts if p is None else host.from_numpy(prompts, p.xp, device=p.device, dtype=None)
    answers = host.to_numpy(generate(model, ids, length))[:, length:]
    return float(np.mean(np.all(answers == np.sort(prompts, axis=1), axis=1)))
