"""Sequence example data, built on the host with NumPy: minGPT's sort task and the adding problem."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "test")


def sort_split(sequence: np.ndarray | Sequence[int]) -> str:
    """'test' for a quarter of all sequences, 'train' for the rest, by a stable hash of the sequence's digits (SHA-256;
    minGPT hashes with Python's ``hash``, which is salted per process, so its split changes from run to run)."""
    digest = hashlib.sha256(bytes(int(d) for d in sequence)).digest()
    return "test" if digest[0] % 4 == 0 else "train"


def sort_problems(n: int, split: str, seed: int, length: int = 6, digits: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """minGPT's sort task: ``n`` sequences of ``length`` digits in [0, digits) from ``split``, drawn uniformly with
    repetition from the sequences of that split (as minGPT's rejection sampling does: it redraws a sequence of the
    other split; its "boost" of repeats never rejects when digits <= length // 2, as here).

    Returns X (n, 2 * length - 1) int64, the sequence followed by its sorted version without the last digit, and
    y (n, 2 * length - 1) int64, the next digit at every position, -1 at the first length - 1 positions (the input
    part: ignored by SoftmaxCrossEntropy(ignore_index=-1))."""
    if split not in SPLITS:
        raise ValueError(f"sort_problems: split must be one of {SPLITS}, got {split!r}")
    if n < 0 or length < 1 or digits < 2 or digits > 256:
        raise ValueError(f"sort_problems: need n >= 0, length >= 1, 2 <= digits <= 256, got {n}, {length}, {digits}")
    every = np.array(list(itertools.product(range(digits), repeat=length)), dtype=np.int64)
    members = every[[sort_split(s) == split for s in every]]
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    sequences = members[rng.integers(0, len(members), n)]
    whole = np.concatenate([sequences, np.sort(sequences, axis=1)], axis=1)
    X, y = whole[:, :-1].copy(), whole[:, 1:].copy()
    y[:, :length - 1] = -1
    return X, y


def adding(n: int, seed: int, steps: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem (Hochreiter & Schmidhuber 1997): X (n, steps, 2) float64, channel 0 a value drawn from
    [0, 1) at every step, channel 1 a marker with exactly two 1s, one in each half of the sequence; y (n, 1) the
    sum of the two marked values (predicting its mean, 1, scores an MSE of 1/6)."""
    if n < 0 or steps < 2:
        raise ValueError(f"adding: need n >= 0 and steps >= 2, got {n} and {steps}")
    rng = np.random.default_rng(seed)
    values = rng.random((n, steps))
    half = steps // 2
    first, second = rng.integers(0, half, n), rng.integers(half, steps, n)
    marks = np.zeros((n, steps))
    rows = np.arange(n)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    y = (values[rows, first] + values[rows, second])[:, None]
    return np.stack([values, marks], axis=2), y
