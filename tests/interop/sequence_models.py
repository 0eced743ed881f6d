"""The sequence models the interop tests convert and export (no torch needed): each new layer alone, a small GPT, a
GRU classifier and a stack of bidirectional LSTMs, with inputs to match (token ids or float sequences)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

from portnn import nn as pnn
from portnn.optim import AdamW
from portnn.train.model import Sequential

VOCAB, STEPS, FEATURES = 11, 6, 4


def ids(n: int, seed: int, steps: int = STEPS) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, size=(n, steps))


def floats(n: int, seed: int, dtype: str, features: int = FEATURES) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, STEPS, features)).astype(dtype)


def sample(net: Sequential, n: int, seed: int, dtype: str) -> np.ndarray:
    """n inputs for ``net``: token ids when its first layer takes them, else (n, STEPS, in) floats."""
    first = net.layers[0]
    if first.integer_input:
        return ids(n, seed)
    width = getattr(first, "input_size", 0) or getattr(first, "embed_dim", 0) or getattr(first, "dim", FEATURES)
    return floats(n, seed, dtype, width)


# ---- the models ---------------------------------------------------------------------------------------------------

def gpt(dtype: str) -> Sequential:
    """Embedding + positions, a pre-norm causal attention block with attention dropout, a pre-norm MLP block, a
    final LayerNorm and the logits (N, T, VOCAB) (minGPT's shape, one block)."""
    return Sequential(pnn.Embedding(VOCAB, 8), pnn.PositionalEmbedding(STEPS + 2, 8),
                      pnn.Residual(pnn.LayerNorm(8), pnn.MultiHeadAttention(8, 2, causal=True, dropout=0.1)),
                      pnn.Residual(pnn.LayerNorm(8), pnn.Dense(8, 16), pnn.GELU(), pnn.Dense(16, 8)),
                      pnn.LayerNorm(8), pnn.Dense(8, VOCAB), seed=5, dtype=dtype)


def gru_classifier(dtype: str) -> Sequential:
    return Sequential(pnn.Embedding(VOCAB, 6), pnn.GRU(6, 5), pnn.Dense(5, 3), seed=6, dtype=dtype)


def bilstm(dtype: str) -> Sequential:
    """Two bidirectional LSTMs (the first returning sequences), a Dense on 3-D input between them."""
    return Sequential(pnn.LSTM(FEATURES, 5, return_sequences=True, bidirectional=True), pnn.Dense(10, 6), pnn.Tanh(),
                      pnn.LSTM(6, 3, bidirectional=True), pnn.Dense(6, 2), seed=7, dtype=dtype)


MODELS = {"gpt": (gpt, "tokens"), "gru-classifier": (gru_classifier, "labels"), "bilstm": (bilstm, "labels")}


@cache
def trained(name: str, dtype: str) -> Sequential:
    """A model after 3 AdamW steps on random targets: every weight off its initialisation."""
    make, target = MODELS[name]
    net = make(dtype).to("numpy", dtype=dtype)
    X = sample(net, 48, 0, dtype)
    rng = np.random.default_rng(1)
    y = rng.integers(0, VOCAB, size=(48, STEPS)) if target == "tokens" else rng.integers(0, 2, size=48)
    start = net.state_dict()
    net.fit(X, y, loss=pnn.SoftmaxCrossEntropy(), optimizer=AdamW(0.02), steps=3, batch_size=16)
    after = net.state_dict()
    assert all(not np.array_equal(start[k], after[k]) for k in start if ".bias" not in k)  # every weight moved
    return net


LAYERS: dict[str, Callable[[], pnn.Layer]] = {  # one layer each, on (N, STEPS, FEATURES) floats or (N, STEPS) ids
    "embedding": lambda: pnn.Embedding(VOCAB, FEATURES),
    "positions": lambda: pnn.PositionalEmbedding(STEPS + 3, FEATURES, std=0.5),
    "gru": lambda: pnn.GRU(FEATURES, 3),
    "gru-sequences": lambda: pnn.GRU(FEATURES, 3, return_sequences=True),
    "gru-bidirectional": lambda: pnn.GRU(FEATURES, 3, bidirectional=True),
    "gru-bidirectional-sequences": lambda: pnn.GRU(FEATURES, 3, return_sequences=True, bidirectional=True),
    "lstm": lambda: pnn.LSTM(FEATURES, 3),
    "lstm-sequences": lambda: pnn.LSTM(FEATURES, 3, return_sequences=True),
    "lstm-bidirectional": lambda: pnn.LSTM(FEATURES, 3, bidirectional=True),
    "lstm-bidirectional-sequences": lambda: pnn.LSTM(FEATURES, 3, return_sequences=True, bidirectional=True),
    "attention": lambda: pnn.MultiHeadAttention(FEATURES, 2),
    "attention-causal": lambda: pnn.MultiHeadAttention(FEATURES, 2, causal=True),
    "attention-no-bias-dropout": lambda: pnn.MultiHeadAttention(FEATURES, 1, causal=True, dropout=0.2, bias=False),
    "last-step": pnn.LastStep,
    "mean-over-time": pnn.GlobalAvgPoolTime,
}


def one_layer(name: str, dtype: str) -> Sequential:
    return Sequential(LAYERS[name](), seed=3).to("numpy", dtype=dtype)
