"""The MLP epoch benchmark: a 784-256-256-10 ReLU MLP, softmax cross-entropy, plain SGD, float32, shuffled
mini-batches, one epoch per call, written three ways from the same initial weights and the same batch order:
portnn, a hand-written NumPy (or CuPy) loop of the same math, and torch eager with autograd."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..array import random as host_random
from ..nn import Dense, ReLU, SoftmaxCrossEntropy
from ..optim import SGD
from ..train.model import Sequential
from .runtime import Runtime, torch_sgd_epoch

LR = 0.01


@dataclass(frozen=True)
class MLPSpec:
    """Sizes of the workload: layer widths, samples per epoch and batch size."""

    widths: tuple[int, ...] = (784, 256, 256, 10)
    samples: int = 60_000
    batch: int = 256

    def flops(self) -> float:
        """Exact matmul FLOPs of one epoch: forward, weight gradients, and input gradients of every layer but the
        first (2 flops per multiply-add); 72.7 GFLOP for 784-256-256-10 on 60,000 samples."""
        pairs = list(zip(self.widths[:-1], self.widths[1:], strict=True))
        per_sample = sum(2 * 2 * i * o for i, o in pairs) + sum(2 * i * o for i, o in pairs[1:])
        return float(per_sample * self.samples)

    def data(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Random host data: X float32 uniform in [0, 1) of shape (samples, widths[0]), y int64 labels."""
        rng = np.random.default_rng(seed)
        return (rng.random((self.samples, self.widths[0]), dtype=np.float32),
                rng.integers(0, self.widths[-1], self.samples))

    def model(self, seed: int = 0) -> Sequential:
        """The portnn network (float32)."""
        layers: list[Any] = []
        for i, o in zip(self.widths[:-1], self.widths[1:], strict=True):
            layers += [Dense(i, o), ReLU()]
        return Sequential(*layers[:-1], seed=seed, dtype="float32")

    def activation_bytes(self, itemsize: int = 4) -> int:
        """Bytes of what one training step keeps: the batch, each layer's output (pre- and post-ReLU), the
        softmax probabilities, and the gradient flowing back through the widest layer."""
        widths = self.widths
        per_sample = widths[0] + 2 * sum(widths[1:-1]) + 2 * widths[-1] + max(widths[1:])
        return per_sample * self.batch * itemsize


def host_weights(net: Sequential) -> list[np.ndarray]:
    """[W1, b1, W2, b2, ...] of a freshly built portnn net as float32 host arrays (its initial values)."""
    return [np.asarray(layer[name], dtype=np.float32).copy() for layer in net.params if layer
            for name in ("weight", "bias")]


def portnn_epoch(rt: Runtime, spec: MLPSpec, X: Any, y: Any) -> Callable[[], float]:
    """One epoch of ``Sequential.fit`` (no extra metrics, so it does the same work as the hand-written loop)."""
    net = spec.model()
    net.to(rt.xp, rt.device, "float32")
    loss, opt = SoftmaxCrossEntropy(), SGD(LR)

    def epoch() -> float:
        return net.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=spec.batch, metrics=[])[-1]

    return epoch


def hand_epoch(np_like: Any, spec: MLPSpec, X: Any, y: Any, weights: list[np.ndarray]) -> Callable[[], float]:
    """One epoch written by hand in ``np_like`` (numpy or cupy) as one would without a library: in-place ReLU,
    masks multiplied in, in-place SGD, the loss read on the host every step (as ``fit`` does)."""
    params = [np_like.asarray(w) for w in weights]
    count = len(params) // 2
    state = {"epoch": 0}

    def epoch() -> float:
        order = np_like.asarray(host_random.permutation(0, state["epoch"], spec.samples))
        state["epoch"] += 1
        total = 0.0
        for start in range(0, spec.samples, spec.batch):
            idx = order[start:start + spec.batch]
            a, yb = np_like.take(X, idx, axis=0), np_like.take(y, idx, axis=0)
            n = a.shape[0]
            acts = [a]
            for i in range(count):
                a = acts[-1] @ params[2 * i]
                a += params[2 * i + 1]
                if i < count - 1:
                    np_like.maximum(a, 0, out=a)
                acts.append(a)
            z = acts[-1]
            z -= z.max(axis=1, keepdims=True)
            p = np_like.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            rows = np_like.arange(n)
            total += -float(np_like.log(p[rows, yb]).sum())
            p[rows, yb] -= 1.0
            p /= n
            d = p
            for i in range(count - 1, -1, -1):
                w, h = params[2 * i], acts[i]
                dw, db = h.T @ d, d.sum(axis=0)
                if i > 0:  # no gradient for the input
                    d = d @ w.T
                    d *= h > 0
                w -= LR * dw
                params[2 * i + 1] -= LR * db
        return total / spec.samples

    return epoch


def matmul_floor_epoch(np_like: Any, spec: MLPSpec, weights: list[np.ndarray]) -> Callable[[], float]:
    """Only the matmuls of an epoch (same shapes and count, into preallocated outputs, nothing else): the floor
    that no implementation of this training step can beat on this BLAS."""
    ws = [np_like.asarray(w) for w in weights[0::2]]
    batches = [(start, min(spec.batch, spec.samples - start)) for start in range(0, spec.samples, spec.batch)]
    sizes = sorted({n for _, n in batches})
    acts = {n: [np_like.ones((n, w), dtype=np_like.float32) for w in spec.widths] for n in sizes}
    douts = {n: [np_like.ones((n, w), dtype=np_like.float32) for w in spec.widths] for n in sizes}
    grads = [np_like.empty_like(w) for w in ws]

    def epoch() -> float:
        for _, n in batches:
            a, d = acts[n], douts[n]  # values stay bounded: each product is recomputed from fixed inputs
            for i, w in enumerate(ws):
                np_like.matmul(a[i], w, out=a[i + 1])
            for i in range(len(ws) - 1, -1, -1):
                np_like.matmul(a[i].T, d[i + 1], out=grads[i])
                if i > 0:
                    np_like.matmul(d[i + 1], ws[i].T, out=d[i])
        return 0.0

    return epoch


def torch_epoch(torch_device: str, spec: MLPSpec, X_host: np.ndarray, y_host: np.ndarray,
                weights: list[np.ndarray]) -> Callable[[], float]:
    """One epoch of idiomatic torch eager: nn.Sequential of Linear/ReLU, F.cross_entropy, autograd,
    torch.optim.SGD, ``loss.item()`` every step."""
    import torch

    dev = torch.device(torch_device)
    layers: list[Any] = []
    for i in range(len(weights) // 2):
        lin = torch.nn.Linear(*weights[2 * i].shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(weights[2 * i].T.copy()))
            lin.bias.copy_(torch.from_numpy(weights[2 * i + 1]))
        layers += [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).to(dev)
    return torch_sgd_epoch(model, X_host, y_host, spec.samples, spec.batch, LR, dev)
