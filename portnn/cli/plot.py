"""Training curves (loss, and accuracy when recorded) drawn with matplotlib, an optional extra: portnn[plot]."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..io.atomic import atomic_write

MISSING = 'plotting needs matplotlib, which is not installed: pip install "portnn[plot]"'
SUFFIXES = (".png", ".pdf", ".svg")  # the formats matplotlib writes without a GUI backend; chosen by file name


def require() -> None:
    """Raise ImportError with the install command when matplotlib is missing (call it before training)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise ImportError(MISSING) from err


def history(values: dict[str, list[float]], path: str | os.PathLike, title: str = "") -> None:
    """Draw the per-epoch curves in ``values`` ('loss', 'val_loss', 'accuracy', 'val_accuracy', ...) into a PNG,
    PDF or SVG named by ``path``'s suffix: the losses on a log scale on the left, the other metrics on the right;
    the file is replaced atomically."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"plot: {path}: the file name must end in {', '.join(SUFFIXES)}")
    require()
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    if not values.get("loss"):
        raise ValueError("plot: there is no training history to draw (train for at least one epoch)")
    others = sorted({k.removeprefix("val_") for k in values} - {"loss"})
    fig = Figure(figsize=(10 if others else 5.5, 4), layout="constrained")
    axes = fig.subplots(1, 1 + len(others), squeeze=False)[0]
    for ax, name in zip(axes, ["loss", *others], strict=True):
        for key, label in ((name, "training"), (f"val_{name}", "held-out")):
            if values.get(key):
                ax.plot(range(1, len(values[key]) + 1), values[key], label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        if name == "loss" and min(min(v) for k, v in values.items() if k.endswith("loss") and v) > 0:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=suffix[1:], dpi=100)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
