"""Metrics besides the loss, as counts summed over batches (one host transfer per epoch, not per batch).

A metric is ``f(out, y, xp, loss) -> 0-d array`` in the output's dtype: the sum of per-sample scores of a batch
(the loss tells how to read the outputs: logits or probabilities, which target positions are ignored).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .losses import BinaryCrossEntropy, Loss, SoftmaxCrossEntropy

Metric = Callable[[Any, Any, Any, Any], Any]


def correct(out: Any, y: Any, xp: Any, loss: Loss | None = None) -> Any:
    """Number of correctly classified samples. Several outputs (the last axis): argmax against class labels or
    one-hot targets, and a sample of a sequence (N, T, classes) counts when every position it is scored on is
    right (positions labelled with the loss's ``ignore_index`` are not scored); one output column: ``out >
    threshold`` against ``y > 0.5`` (``threshold``: 0.5 for probabilities, 0.0 for logits)."""
    if out.ndim >= 2 and out.shape[-1] > 1:
        predicted = xp.argmax(out, axis=-1)
        target = y if y.ndim == out.ndim - 1 else xp.argmax(y, axis=-1)
        hits = predicted == target
        ignore = getattr(loss, "ignore_index", None)
        if ignore is not None and y.ndim == out.ndim - 1:
            hits = hits | (y == ignore)
    else:
        hits = (out > threshold(loss)) == (y > 0.5)
    if hits.ndim > 1:
        hits = xp.all(xp.reshape(hits, (hits.shape[0], -1)), axis=1)
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


def threshold(loss: Loss | None) -> float:
    """Decision threshold of a one-column output: 0 for logits (BinaryCrossEntropy), 0.5 for probabilities."""
    return 0.0 if isinstance(loss, BinaryCrossEntropy) else 0.5
