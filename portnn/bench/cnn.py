"""The CNN epoch benchmark on digits-sized random data (1x8x8 images, 10 classes): the digits-cnn recipe's
architecture (conv 8 - pool - conv 16 - pool - dense 10), SGD, in portnn and in torch eager."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..nn import Conv2D, Dense, Flatten, MaxPool2D, ReLU, SoftmaxCrossEntropy
from ..optim import SGD
from ..train.model import Sequential
from .runtime import Runtime, torch_sgd_epoch

LR = 0.01


@dataclass(frozen=True)
class CNNSpec:
    """Samples per epoch (1347 = the digits training split) and batch size."""

    samples: int = 1347
    batch: int = 32

    def data(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Random host images X float32 (samples, 1, 8, 8) in [0, 1) and int64 labels y (samples,)."""
        rng = np.random.default_rng(seed)
        return rng.random((self.samples, 1, 8, 8), dtype=np.float32), rng.integers(0, 10, self.samples)

    def model(self, seed: int = 0) -> Sequential:
        return Sequential(Conv2D(1, 8, 3, padding=1), ReLU(), MaxPool2D(2), Conv2D(8, 16, 3, padding=1), ReLU(),
                          MaxPool2D(2), Flatten(), Dense(64, 10), seed=seed, dtype="float32")


def portnn_epoch(rt: Runtime, spec: CNNSpec, X: Any, y: Any) -> tuple[Callable[[], float], Any]:
    """One epoch of ``Sequential.fit``; also returns the net (its initial weights seed the torch copy)."""
    net = spec.model()
    weights = {k: np.asarray(v, dtype=np.float32).copy() for k, v in net.parameters().items()}
    net.to(rt.xp, rt.device, "float32")
    loss, opt = SoftmaxCrossEntropy(), SGD(LR)

    def epoch() -> float:
        return net.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=spec.batch, metrics=[])[-1]

    return epoch, weights


def torch_epoch(torch_device: str, spec: CNNSpec, X_host: np.ndarray, y_host: np.ndarray,
                weights: dict[Any, np.ndarray]) -> Callable[[], float]:
    """The same network and initial weights in torch eager (Conv2d, MaxPool2d, Flatten, Linear), torch.optim.SGD."""
    import torch

    nn = torch.nn
    dev = torch.device(torch_device)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10))
    with torch.no_grad():
        for (i, name), w in weights.items():
            target = getattr(model[i], name)
            target.copy_(torch.from_numpy(w.T.copy() if isinstance(model[i], nn.Linear) and name == "weight" else w))
    model = model.to(dev)
    return torch_sgd_epoch(model, X_host, y_host, spec.samples, spec.batch, LR, dev)
