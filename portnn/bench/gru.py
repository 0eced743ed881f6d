"""The GRU epoch benchmark: the adding-gru recipe's network (a GRU of 32 over 50 steps and a dense head, MSE, Adam,
float32, shuffled batches of 64) in portnn and in torch eager with ``nn.GRU``, from the same initial weights and in
the same batch order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..array import random as host_random
from ..data import sequences
from ..nn import GRU, MSE, Dense
from ..optim import Adam
from ..train.model import Sequential
from .runtime import Runtime

LR = 0.01


@dataclass(frozen=True)
class GRUSpec:
    """Samples per epoch (5,000: the adding-gru recipe), sequence length, hidden width and batch size."""

    samples: int = 5000
    steps: int = 50
    hidden: int = 32
    batch: int = 64

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The adding problem as float32 host arrays: X (samples, steps, 2), y (samples, 1)."""
        X, y = sequences.adding(self.samples, seed=0, steps=self.steps)
        return X.astype(np.float32), y.astype(np.float32)

    def model(self, seed: int = 0) -> Sequential:
        return Sequential(GRU(2, self.hidden), Dense(self.hidden, 1), seed=seed, dtype="float32")

    def step_count(self) -> int:
        return -(-self.samples // self.batch)


def portnn_epoch(rt: Runtime, spec: GRUSpec, X: Any, y: Any) -> tuple[Callable[[], float], dict[str, np.ndarray]]:
    """One epoch of ``Sequential.fit``; also returns the initial weights ('0.weight_ih', ...) for the torch copy."""
    net = spec.model()
    weights = {k: np.asarray(v, dtype=np.float32).copy() for k, v in net.state_dict().items()}
    net.to(rt.xp, rt.device, "float32")
    loss, opt = MSE(), Adam(LR)

    def epoch() -> float:
        return net.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=spec.batch, metrics=[])[-1]

    return epoch, weights


def torch_epoch(torch_device: str, spec: GRUSpec, X_host: np.ndarray, y_host: np.ndarray,
                weights: dict[str, np.ndarray]) -> Callable[[], float]:
    """The same network in torch eager: ``nn.GRU(batch_first=True)`` (portnn's layout: weight_ih <-> weight_ih_l0)
    and ``nn.Linear``, MSE, ``torch.optim.Adam``, batches in portnn's order; the loss read every step as portnn's."""
    import torch

    nn = torch.nn
    dev = torch.device(torch_device)
    gru, head = nn.GRU(2, spec.hidden, batch_first=True), nn.Linear(spec.hidden, 1)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(gru, f"{name}_l0").copy_(torch.from_numpy(weights[f"0.{name}"]))
        head.weight.copy_(torch.from_numpy(weights["1.weight"].T.copy()))
        head.bias.copy_(torch.from_numpy(weights["1.bias"]))
    gru, head = gru.to(dev), head.to(dev)
    opt = torch.optim.Adam([*gru.parameters(), *head.parameters()], lr=LR)
    X, y = torch.from_numpy(X_host).to(dev), torch.from_numpy(y_host).to(dev)
    state = {"epoch": 0}

    def epoch() -> float:
        order = torch.from_numpy(host_random.permutation(0, state["epoch"], spec.samples)).to(dev)
        state["epoch"] += 1
        total = 0.0
        for start in range(0, spec.samples, spec.batch):
            idx = order[start:start + spec.batch]
            xb, yb = X.index_select(0, idx), y.index_select(0, idx)
            out, _ = gru(xb)
            loss = torch.mean((head(out[:, -1, :]) - yb) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
        return total / spec.samples

    return epoch
