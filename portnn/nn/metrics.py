"""Metrics besides the loss, as counts summed over batches (one host transfer per epoch, not per batch).

A metric is ``f(out, y, xp, threshold) -> 0-d array`` in the output's dtype: the sum of per-sample scores of a batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .losses import BinaryCrossEntropy, Loss, SoftmaxCrossEntropy

Metric = Callable[[Any, Any, Any, float], Any]


def correct(out: Any, y: Any, xp: Any, threshold: float = 0.5) -> Any:
    """Number of correctly classified samples. Several outputs: argmax against labels (batch,) or one-hot targets;
    one output column: ``out > threshold`` against ``y > 0.5`` (0.5 for probabilities, 0.0 for logits)."""
    if out.ndim == 2 and out.shape[1] > 1:
        predicted = xp.argmax(out, axis=1)
        target = y if y.ndim == 1 else xp.argmax(y, axis=1)
        hits = predicted == target
    else:
        hits = (out > threshold) == (y > 0.5)
        if hits.ndim == 2:
            hits = xp.all(hits, axis=1)
    return xp.sum(xp.astype(hits, out.dtype))


METRICS: dict[str, Metric] = {"accuracy": correct}


def check(names: list[str] | tuple[str, ...], where: str) -> list[str]:
    """Validate metric names; ValueError listing the known ones otherwise."""
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"{where}: metrics must be a list of names such as ['accuracy'], got {names!r}")
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"{where}: unknown metrics {unknown}; known: {', '.join(METRICS)}")
    return list(names)


def defaults(loss: Loss) -> list[str]:
    """Metrics reported when none are asked for: accuracy for classification losses, none for regression."""
    return ["accuracy"] if isinstance(loss, SoftmaxCrossEntropy | BinaryCrossEntropy) else []


def threshold(loss: Loss) -> float:
    """Decision threshold of a one-column output: 0 for logits (BinaryCrossEntropy), 0.5 for probabilities."""
    return 0.0 if isinstance(loss, BinaryCrossEntropy) else 0.5
