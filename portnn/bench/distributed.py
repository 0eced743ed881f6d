"""Throughput of data-parallel training: samples per second of an MLP epoch on 1, 2, ... MPI ranks (for
``portnn bench``; ``python -m portnn.bench.distributed`` prints the table)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ..distributed import launch


def throughput(ranks: tuple[int, ...] = (1, 2), samples: int = 60_000, batch: int = 256, epochs: int = 2,
               timeout: float = 600.0) -> list[dict[str, float]]:
    """Samples per second of a data-parallel MLP epoch (784-256-256-10, float32, SGD, global batch ``batch``) on
    each number of ranks, one BLAS thread per rank, the median of ``epochs`` timed epochs after a warm-up one.
    Rows: {'ranks', 'epoch_s', 'samples_per_s', 'speedup'} (speedup against the first entry of ``ranks``)."""
    rows: list[dict[str, float]] = []
    for n in ranks:
        with tempfile.TemporaryDirectory(prefix="portnn-bench-") as folder:
            argv = ["-m", "portnn.bench.ranks", "--samples", str(samples), "--batch", str(batch),
                    "--epochs", str(epochs), "--out", folder]
            done, _ = launch.run(n, argv, timeout=timeout)
            launch.check(done, f"the {n}-rank benchmark")
            seconds = float(np.median(np.load(Path(folder) / "bench-rank0.npz")["seconds"]))
        rows.append({"ranks": n, "epoch_s": seconds, "samples_per_s": samples / seconds})
    for row in rows:
        row["speedup"] = rows[0]["epoch_s"] / row["epoch_s"]
    return rows


def throughput_table(rows: list[dict[str, float]]) -> str:
    """The rows of ``throughput`` as text."""
    lines = ["ranks  epoch s  samples/s  speedup"]
    lines += [f"{int(r['ranks']):>5}  {r['epoch_s']:7.3f}  {r['samples_per_s']:9.0f}  {r['speedup']:6.2f}x"
              for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    start = time.perf_counter()
    print(throughput_table(throughput()))
    print(f"({time.perf_counter() - start:.1f} s)")
