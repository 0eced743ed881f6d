"""The sort-gpt training step benchmark: minGPT's gpt-nano on the sort task (3 blocks of causal 3-head attention and
a GELU MLP, 48 wide, dropout 0.1; AdamW with betas (0.9, 0.95) and weight decay 0.1 on linear weights, clipping at
norm 1; float32, shuffled batches of 64), written three ways from the same initial weights and in the same batch
order: portnn (``fit``, eager or compiled), torch eager (``nn.MultiheadAttention``, ``nn.LayerNorm``, ``nn.Linear``,
``torch.optim.AdamW``) and a hand-written ``jax.jit(value_and_grad)`` step. Dropout draws from each library's own
generator, so only ``dropout=0.0`` runs compute the same losses (the benchmark's tests compare those)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..array import random as host_random
from ..data import sequences
from ..data.gpt import gpt
from ..nn import SoftmaxCrossEntropy
from ..optim import AdamW
from ..train.model import Sequential
from .runtime import jit_epochs

LR, BETAS, DECAY, CLIP = 5e-4, (0.9, 0.95), 0.1, 1.0
WIDTH, HEADS, BLOCKS, VOCAB, LENGTH = 48, 3, 3, 3, 11


@dataclass(frozen=True)
class GPTSpec:
    """Samples per epoch (6,400: 100 steps of 64, a sort-gpt epoch), batch size and the dropout rate."""

    samples: int = 6400
    batch: int = 64
    dropout: float = 0.1

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The sort task's host ids: X (samples, 11), y (samples, 11) with -1 at the ignored positions."""
        return sequences.sort_problems(self.samples, "train", seed=0)

    def model(self, seed: int = 0) -> Sequential:
        net = gpt(VOCAB, LENGTH, WIDTH, HEADS, BLOCKS, self.dropout, seed)
        net.dtype = "float32"
        return net

    def weights(self) -> dict[str, np.ndarray]:
        """The initial weights of ``model()`` as float32 host arrays keyed as its state_dict."""
        return {k: v.astype(np.float32) for k, v in self.model().state_dict().items()}

    @property
    def steps(self) -> int:
        return -(-self.samples // self.batch)


def portnn_epoch(backend: str, spec: GPTSpec, compile: bool) -> Callable[[], float]:
    """One epoch of ``Sequential.fit`` on ``backend`` (compiled or eager), returning its mean loss."""
    from .runtime import load_runtime

    rt = load_runtime(backend)
    X, y = spec.data()
    net = spec.model().to(rt.xp, rt.device, "float32")
    Xd, yd = rt.asarray(X), rt.asarray(y)
    loss, opt = SoftmaxCrossEntropy(ignore_index=-1), AdamW(LR, betas=BETAS, weight_decay=DECAY)

    def epoch() -> float:
        return net.fit(Xd, yd, loss=loss, optimizer=opt, epochs=1, batch_size=spec.batch, metrics=[],
                       clip_norm=CLIP, compile=compile)[-1]

    return epoch


def _blocks() -> list[tuple[int, int]]:
    """(attention residual, MLP residual) layer indices of each block in the portnn model."""
    return [(3 + 2 * b, 4 + 2 * b) for b in range(BLOCKS)]


def torch_epoch(torch_device: str, spec: GPTSpec, weights: dict[str, np.ndarray]) -> Callable[[], float]:
    """The same GPT in torch eager, trained in portnn's batch order; the loss read every step, as portnn eager."""
    import torch
    import torch.nn.functional as F

    nn = torch.nn
    dev = torch.device(torch_device)
    p = spec.dropout

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
            self.attn = nn.MultiheadAttention(WIDTH, HEADS, dropout=p, batch_first=True)
            self.fc1, self.fc2 = nn.Linear(WIDTH, 4 * WIDTH), nn.Linear(4 * WIDTH, WIDTH)
            self.drop1, self.drop2 = nn.Dropout(p), nn.Dropout(p)

        def forward(self, x: Any, mask: Any) -> Any:
            h = self.ln1(x)
            x = x + self.drop1(self.attn(h, h, h, attn_mask=mask, need_weights=False)[0])
            return x + self.drop2(self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh")))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok, self.pos = nn.Embedding(VOCAB, WIDTH), nn.Parameter(torch.zeros(LENGTH, WIDTH))
            self.drop = nn.Dropout(p)
            self.blocks = nn.ModuleList(Block() for _ in range(BLOCKS))
            self.ln, self.head = nn.LayerNorm(WIDTH), nn.Linear(WIDTH, VOCAB)

        def forward(self, ids: Any) -> Any:
            t = ids.shape[1]
            mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=ids.device), diagonal=1)  # True: masked
            x = self.drop(self.tok(ids) + self.pos[:t])
            for block in self.blocks:
                x = block(x, mask)
            return self.head(self.ln(x))

    model = GPT()
    w = {k: torch.from_numpy(v.copy()) for k, v in weights.items()}
    with torch.no_grad():
        model.tok.weight.copy_(w["0.weight"])
        model.pos.copy_(w["1.weight"])
        blocks: list[Any] = list(model.blocks)
        for block, (a, m) in zip(blocks, _blocks(), strict=True):
            block.ln1.weight.copy_(w[f"{a}.0.weight"])
            block.ln1.bias.copy_(w[f"{a}.0.bias"])
            block.attn.in_proj_weight.copy_(w[f"{a}.1.in_proj_weight"])
            block.attn.in_proj_bias.copy_(w[f"{a}.1.in_proj_bias"])
            block.attn.out_proj.weight.copy_(w[f"{a}.1.out_proj_weight"])
            block.attn.out_proj.bias.copy_(w[f"{a}.1.out_proj_bias"])
            block.ln2.weight.copy_(w[f"{m}.0.weight"])
            block.ln2.bias.copy_(w[f"{m}.0.bias"])
            block.fc1.weight.copy_(w[f"{m}.1.weight"].T)  # portnn's Dense holds (in, out)
            block.fc1.bias.copy_(w[f"{m}.1.bias"])
            block.fc2.weight.copy_(w[f"{m}.3.weight"].T)
            block.fc2.bias.copy_(w[f"{m}.3.bias"])
        last = 3 + 2 * BLOCKS
        model.ln.weight.copy_(w[f"{last}.weight"])
        model.ln.bias.copy_(w[f"{last}.bias"])
        model.head.weight.copy_(w[f"{last + 1}.weight"].T)
        model.head.bias.copy_(w[f"{last + 1}.bias"])
    model = model.to(dev).train()
    decayed = [param for name, param in model.named_parameters()
               if name.endswith(("fc1.weight", "fc2.weight", "head.weight", "in_proj_weight", "out_proj.weight"))]
    kept = [param for param in model.parameters() if all(param is not d for d in decayed)]
    opt = torch.optim.AdamW([{"params": decayed, "weight_decay": DECAY}, {"params": kept, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS)
    X_host, y_host = spec.data()
    X, y = torch.from_numpy(X_host).to(dev), torch.from_numpy(y_host).to(dev)
    state = {"epoch": 0}

    def epoch() -> float:
        order = torch.from_numpy(host_random.permutation(0, state["epoch"], spec.samples)).to(dev)
        state["epoch"] += 1
        total = 0.0
        for start in range(0, spec.samples, spec.batch):
            idx = order[start:start + spec.batch]
            xb, yb = X.index_select(0, idx), y.index_select(0, idx)
            loss = F.cross_entropy(model(xb).reshape(-1, VOCAB), yb.reshape(-1), ignore_index=-1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            opt.step()
            total += loss.item() * xb.shape[0]
        return total / spec.samples

    return epoch


def hand_jax_epoch(spec: GPTSpec, weights: dict[str, np.ndarray]) -> Callable[[], float]:
    """The GPT as a JAX user writes it: the forward in jax.numpy, ``jax.jit`` of a ``value_and_grad`` step with
    clipping and AdamW, the batch gathered inside it, dropout from ``jax.random``, the losses read once per epoch."""
    from .compiled import _jax

    jax, jnp = _jax()
    X_host, y_host = spec.data()
    Xd, yd = jnp.asarray(X_host), jnp.asarray(y_host)
    params = {k: jnp.asarray(v) for k, v in weights.items()}
    decay = {k: k.endswith(("in_proj_weight", "out_proj_weight")) or (k.endswith(".weight") and k.count(".") == 2
                                                                       and k.split(".")[1] in ("1", "3"))
             for k in params}
    decay[f"{4 + 2 * BLOCKS}.weight"] = True  # the head
    loss_fn = _hand_jax_loss(jax, jnp, spec.dropout)

    def step(carry: tuple[Any, ...], idx: Any) -> tuple[tuple[Any, ...], Any]:
        ps, m, v, t, key = carry
        key, sub = jax.random.split(key)
        value, grads = jax.value_and_grad(loss_fn)(ps, jnp.take(Xd, idx, axis=0), jnp.take(yd, idx, axis=0), sub)
        total = jnp.sqrt(sum(jnp.sum(g * g) for g in grads.values()))
        coef = jnp.minimum(CLIP / (total + 1e-6), 1.0)
        t = t + 1
        b1, b2 = BETAS
        new_p, new_m, new_v = {}, {}, {}
        for k, g in grads.items():
            g = g * coef
            new_m[k] = b1 * m[k] + (1 - b1) * g
            new_v[k] = b2 * v[k] + (1 - b2) * g * g
            w = ps[k] * (1 - LR * DECAY) if decay[k] else ps[k]
            m_hat, v_hat = new_m[k] / (1 - b1 ** t), new_v[k] / (1 - b2 ** t)
            new_p[k] = w - LR * m_hat / (jnp.sqrt(v_hat) + 1e-8)
        return (new_p, new_m, new_v, t, key), value * idx.shape[0]

    jit_step = jax.jit(step, donate_argnums=0)
    m, v = ({k: jnp.zeros_like(a) for k, a in params.items()} for _ in range(2))  # own buffers: they are donated
    carry = (params, m, v, jnp.asarray(0.0, dtype=jnp.float32), jax.random.key(0))
    return jit_epochs(jit_step, carry, spec.samples, spec.batch)


def _hand_jax_loss(jax: Any, jnp: Any, p: float) -> Callable[..., Any]:
    """The hand-written GPT's loss(params, xb, yb, key): embeddings, pre-norm blocks of causal attention and a GELU
    MLP, the head and the cross-entropy over the counted positions, in jax.numpy."""
    d = WIDTH // HEADS
    causal = jnp.tril(jnp.ones((LENGTH, LENGTH), dtype=bool))

    def drop(x: Any, key: Any, site: int) -> Any:
        if p == 0.0:
            return x
        keep = jax.random.bernoulli(jax.random.fold_in(key, site), 1.0 - p, x.shape)
        return jnp.where(keep, x / (1.0 - p), 0.0)

    def norm(x: Any, w: Any, b: Any) -> Any:
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + 1e-5) * w + b

    def attention(x: Any, ps: dict[str, Any], a: int, key: Any, site: int) -> Any:
        n, t, _ = x.shape
        qkv = x @ ps[f"{a}.1.in_proj_weight"].T + ps[f"{a}.1.in_proj_bias"]
        q, k, v = (jnp.transpose(jnp.reshape(qkv[..., i * WIDTH:(i + 1) * WIDTH], (n, t, HEADS, d)), (0, 2, 1, 3))
                   for i in range(3))
        scores = jnp.where(causal[:t, :t], q @ jnp.swapaxes(k, -1, -2) / math.sqrt(d), -jnp.inf)
        weights_ = drop(jax.nn.softmax(scores, axis=-1), key, site)
        heads = jnp.reshape(jnp.transpose(weights_ @ v, (0, 2, 1, 3)), (n, t, WIDTH))
        return heads @ ps[f"{a}.1.out_proj_weight"].T + ps[f"{a}.1.out_proj_bias"]

    def loss_fn(ps: dict[str, Any], xb: Any, yb: Any, key: Any) -> Any:
        x = drop(jnp.take(ps["0.weight"], xb, axis=0) + ps["1.weight"][:xb.shape[1]], key, 0)
        for b, (a, m) in enumerate(_blocks()):
            x = x + drop(attention(norm(x, ps[f"{a}.0.weight"], ps[f"{a}.0.bias"]), ps, a, key, 3 * b + 1), key,
                         3 * b + 2)
            h = jax.nn.gelu(norm(x, ps[f"{m}.0.weight"], ps[f"{m}.0.bias"]) @ ps[f"{m}.1.weight"] + ps[f"{m}.1.bias"],
                            approximate=True)
            x = x + drop(h @ ps[f"{m}.3.weight"] + ps[f"{m}.3.bias"], key, 3 * b + 3)
        last = 3 + 2 * BLOCKS
        logits = norm(x, ps[f"{last}.weight"], ps[f"{last}.bias"]) @ ps[f"{last + 1}.weight"] + ps[f"{last + 1}.bias"]
        logp = jax.nn.log_softmax(logits, axis=-1)
        counted = yb != -1
        nll = -jnp.take_along_axis(logp, jnp.where(counted, yb, 0)[..., None], axis=-1)[..., 0]
        return jnp.sum(jnp.where(counted, nll, 0.0)) / jnp.maximum(jnp.sum(counted), 1)

    return loss_fn
