"""Autoregressive generation from a model that maps integer ids (N, T) to next-id logits (N, T, V), as minGPT's
``generate``: each step runs the model on the last ids (at most the PositionalEmbedding's max_length of them), takes
the logits of the last position and appends one id: the argmax (greedy), or a sample from softmax(logits /
temperature) over the top_k largest logits. Samples use the Gumbel-max trick, argmax(logits + temperature * g) with
g = -log(-log(u)), the uniforms u drawn from the counter-based generator (``threefry``) keyed by (seed, step): the
same numbers on every backend and device, in the model's dtype.

Every step runs on the device with no host read: the ids live in one (N, T + steps) buffer. Compiled, a model whose
every layer is causal (its output at step t depends on its inputs up to t) reads a window of fixed width, the ids
after the last one padded with zeros, so the per-token function has one shape and is traced once, and the steps run
as the compiler's scan (``jax.lax.scan`` under ``jax.jit``). Eagerly, or for a model with another layer, each step
reads exactly the last ids (compiled: one trace per context length until the window is full). One host read at the
end checks that every logit used was finite.
"""

from __future__ import annotations

from typing import Any

from ..array import host
from ..array.placement import dtype_label, widest
from ..array.policy import policy
from ..array.types import Array, Params
from ..array.validation import BOOLEAN, INDEX, POSITIVE, Choice, Instance, Integer, Optional
from ..nn import (
    ELU,
    GELU,
    GRU,
    LSTM,
    Dense,
    Dropout,
    Embedding,
    Identity,
    LayerNorm,
    LeakyReLU,
    MultiHeadAttention,
    PositionalEmbedding,
    ReLU,
    Residual,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
    threefry,
)
from ..nn.layer import Layer
from . import checks, inputs
from .fit import signature
from .model import Sequential

WHERE = "generate"
Carry = tuple[Array, Array, Array]  # (ids buffer (N, T + steps), step counter, every logit finite so far)
STREAM = 0x67656E  # the generator's lane ('gen'), apart from the layer indices that key dropout masks
# layers whose output at step t depends on their input at step t alone
POSITIONWISE = (Embedding, PositionalEmbedding, Dense, LayerNorm, Dropout, Identity, ReLU, LeakyReLU, Sigmoid, Tanh,
                Softmax, GELU, SiLU, ELU, Softplus)


def causal(layer: Layer) -> bool:
    """Whether ``layer``'s output at step t depends only on its inputs at steps <= t (then padding after the last id
    changes nothing before it)."""
    if isinstance(layer, Residual):
        return all(causal(inner) for inner in layer.layers)
    if isinstance(layer, MultiHeadAttention):
        return layer.causal
    if isinstance(layer, GRU | LSTM):
        return not layer.bidirectional
    return isinstance(layer, POSITIONWISE)


def max_length(model: Sequential) -> int | None:
    """The longest context the model takes: its first PositionalEmbedding's max_length (None: any)."""
    return next((layer.max_length for layer in model.layers if isinstance(layer, PositionalEmbedding)), None)


def generate(model: Sequential, prompt_ids: Any, steps: int, *, greedy: bool = True, temperature: float = 1.0,
             top_k: int | None = None, seed: int = 0, compile: bool | str = "auto") -> Array:
    """The prompt ids (N, T) followed by ``steps`` generated ids: (N, T + steps), integers in the prompt's dtype, in
    the model's namespace and on its device. ``greedy`` takes the argmax (``temperature`` and ``top_k`` then change
    nothing); otherwise each id is sampled from softmax(logits / temperature) restricted to the ``top_k`` largest
    logits (None: all), keyed by (``seed``, step). ``compile`` as in ``fit``."""
    Instance(Sequential, "a portnn Sequential")(model, "model", WHERE)
    steps = INDEX(steps, "steps", WHERE)
    greedy = BOOLEAN(greedy, "greedy", WHERE)
    temperature = POSITIVE(temperature, "temperature", WHERE)
    top_k = Optional(Integer(1))(top_k, "top_k", WHERE)
    seed = INDEX(seed, "seed", WHERE)
    Choice(True, False, "auto")(compile, "compile", WHERE)
    xp, device, ids, width, vocab = _prompt(model, prompt_ids, steps, top_k)
    p = model.place(xp, device, ids)
    if steps == 0:
        return ids
    n, t = (int(d) for d in ids.shape)
    use = policy(p, compile).compiler
    fixed = use.compiles and all(causal(layer) for layer in model.layers)  # eager: the exact context is cheaper
    sampling = (greedy, temperature, top_k, seed)
    key = ("generate", signature(model.layers), p.describe(), str(p.device), use.method, t, steps, width, fixed,
           *sampling)
    run = model._compiled.get(key)
    if run is None:
        run = model._compiled[key] = _runner(model, compile, use, fixed, (xp, device), (n, t, steps, width, vocab),
                                             sampling)
    counter = xp.zeros((), dtype=widest(xp, "int64", xp.int32), device=device)
    start = (xp.concat([ids, xp.zeros((n, steps), dtype=ids.dtype, device=device)], axis=1), counter,
             xp.ones((), dtype=xp.bool, device=device))
    result, _, ok = run(model.params, model.state, start)
    if not host.to_bool(ok):
        raise FloatingPointError(f"{WHERE}: the model's logits are not finite (nan or inf) for some of the prompts; "
                                 "these ids overflow the model's arithmetic")
    return result


def _prompt(model: Sequential, prompt_ids: Any, steps: int, top_k: int | None) -> tuple[Any, Any, Array, int, int]:
    """(xp, device, ids, window width, vocabulary size) of a checked prompt: integer ids (N, T >= 1) in range for
    the model's Embedding, and a model that maps them to next-id logits (N, T, V)."""
    xp, device, arrays = inputs.resolve(model, {"prompt_ids": prompt_ids}, WHERE)
    ids = arrays["prompt_ids"]
    if ids.ndim != 2 or ids.shape[1] < 1 or not xp.isdtype(ids.dtype, "integral"):
        raise ValueError(f"{WHERE}: prompt_ids must be integer token ids of shape (N, T >= 1), got shape "
                         f"{tuple(ids.shape)} and dtype {dtype_label(ids.dtype)}")
    checks.has_rows(ids, "prompt_ids", WHERE)
    n, t = (int(d) for d in ids.shape)
    limit = max_length(model)
    longest = t + max(steps, 1) - 1  # the longest context any step reads
    width = longest if limit is None else min(longest, limit)
    out = inputs.output_shape(model, (n, width), f"{WHERE} (prompt_ids of shape {tuple(ids.shape)})")
    if len(out) != 3 or tuple(out[:2]) != (n, width) or out[2] < 2:
        raise ValueError(f"{WHERE}: the model maps ids of shape {(n, width)} to shape {tuple(out)}; it needs next-id "
                         "logits of shape (N, T, V) with V >= 2 (an Embedding first, a Dense(..., V) last)")
    vocab = int(out[2])
    if top_k is not None and top_k > vocab:
        raise ValueError(f"{WHERE}: top_k must be at most the vocabulary size {vocab}, got {top_k}")
    inputs.first_input(model, ids, xp, WHERE)  # ids in [0, V) of the Embedding
    return xp, device, ids, width, vocab


def _runner(model: Sequential, compile: bool | str, use: Any, fixed: bool, where: tuple[Any, Any],
            sizes: tuple[int, int, int, int, int], sampling: tuple[bool, float, int | None, int]) -> Any:
    """run(params, state, (buffer, i, ok)) -> the same carry after every step: one compiled scan over a fixed window
    (``fixed``), else one function per context width until the window is full."""
    xp, device = where
    n, t, steps, width, vocab = sizes
    greedy, temperature, top_k, seed = sampling
    limit = max_length(model)
    forward, total = model._inference(compile), t + steps

    def token(w: int) -> Any:
        """The step on a window of ``w`` ids: the logits at the last id, the next id written after it."""
        def step(params: Params, state: Params, carry: Carry) -> Carry:
            buffer, i, ok = carry
            length = i + t  # ids so far (a 0-d array: one trace serves every step)
            start = xp.maximum(length - w, 0)
            window = xp.take(buffer, start + xp.arange(w, dtype=i.dtype, device=device), axis=1)
            logits = forward(params, state, window)  # (N, w, V)
            last = xp.take(logits, xp.reshape(length - 1 - start, (1,)), axis=1)[:, 0, :]  # (N, V)
            ok = ok & xp.all(xp.isfinite(last))
            if not greedy:
                if top_k is not None:
                    kth = xp.sort(last, axis=-1, descending=True)[:, top_k - 1:top_k]
                    last = xp.where(last >= kth, last, -xp.inf)
                last = last + temperature * gumbel(seed, i, (n, vocab), last.dtype, xp, device)
            chosen = xp.astype(xp.argmax(last, axis=-1), buffer.dtype)
            column = xp.arange(total, dtype=i.dtype, device=device) == length
            return xp.where(column, chosen[:, None], buffer), i + 1, ok

        return step

    if fixed:  # one window width: every step one compiled scan
        one = token(width)

        def every(params: Params, state: Params, carry: Carry) -> Carry:
            return use.scan(lambda c, _x: (one(params, state, c), None), carry, None, steps)[0]

        return use.jit(every)
    # the exact context: one function per width, until the window is full
    widths = {w: use.jit(token(w)) for w in dict.fromkeys(min(t + s, limit or total) for s in range(steps))}

    def loop(params: Params, state: Params, carry: Carry) -> Carry:
        for s in range(steps):
            carry = widths[min(t + s, limit or total)](params, state, carry)
        return carry

    return loop


def gumbel(seed: int, step: Any, shape: tuple[int, int], dtype: Any, xp: Any, device: Any) -> Array:
    """Standard Gumbel noise -log(-log(u)) of ``shape`` in ``dtype`` from the counter-based generator keyed by
    (seed, step): u = (b + 1/2) / 2**bits from the top 23 (float32) or all 32 (float64) bits of each word, exact in
    the dtype and strictly inside (0, 1)."""
    k = threefry.key(seed, STREAM, step, 0, xp=xp, device=device)
    words = threefry.words(k, 0, shape[0] * shape[1], xp, device)
    bits = 23 if dtype == xp.float32 else 32
    u = (xp.astype(words >> (32 - bits), dtype) + 0.5) * (0.5 ** bits)
    return xp.reshape(-xp.log(-xp.log(u)), shape)
