"""Real MPI jobs (2, 3 and 4 ranks, launched with mpiexec in a subprocess): weights equal single-process training
with the same global batch, bit-identical on every rank; a failing rank ends the job fast with its error shown."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import numpy as np
import pytest

from portnn import backends
from portnn.bench import distributed as distributed_bench
from portnn.cli import main
from portnn.distributed import launch as distributed_launch
from portnn.io import checkpoint
from portnn.parity import distributed as distributed_parity
from portnn.parity.report import render
from portnn.parity.run import Problem, Target, train

pytestmark = pytest.mark.skipif(not distributed_launch.available(),
                                reason='needs mpi4py and mpiexec (pip install "portnn[mpi]")')


def mpirun(ranks: int, args: list[str], timeout: float = 60.0) -> tuple:
    """The job's (completed process, seconds); the launcher kills the process group past ``timeout``."""
    return distributed_launch.run(ranks, args, timeout=timeout)


# (ranks, recipe, dtype, epochs, batch size, max |dW|[, backend compiled]): 200 steps each except the last (mlp: 64
# rows / 16 = 4 batches); the compiled jobs run JAX's jit in two parts around the Allreduce (and SyncBatchNorm's
# sums from inside the compiled step), against single-process NumPy
JOBS: dict[str, tuple[int, str, str, int, int | None, float, *tuple[str, ...]]] = {
    "2-ranks-mlp-float64": (2, "mlp", "float64", 50, None, 1e-12),
    "4-ranks-spiral-adam-float32": (4, "spiral", "float32", 20, None, 1e-5),
    "3-ranks-seed-sse-uneven": (3, "seed", "float64", 200, None, 1e-12),
    # 64 rows in batches of 3: 22 steps an epoch, the last of 1 row, so 3 of the 4 ranks get no rows there
    "4-ranks-batch-3-empty-ranks": (4, "mlp", "float64", 9, 3, 1e-12),
    "2-ranks-mlp-jax-compiled": (2, "mlp", "float64", 20, None, 1e-12, "jax"),
    "4-ranks-mlp-jax-compiled": (4, "mlp", "float64", 10, None, 1e-12, "jax"),
    "2-ranks-resnet-lines-jax-compiled": (2, "resnet-lines", "float64", 2, None, 1e-12, "jax"),
}


@pytest.mark.parametrize("job", list(JOBS))
def test_ranks_end_with_the_single_process_weights(job: str, tmp_path: Path) -> None:
    ranks, example, dtype, epochs, batch, tol, *compiled = JOBS[job]
    if compiled and not backends.get(compiled[0]).installed():
        pytest.skip(f"{compiled[0]} is not installed")
    argv = ["-m", "portnn.parity.ranks", "--example", example, "--dtype", dtype, "--epochs", str(epochs),
            "--out", str(tmp_path), *(["--batch-size", str(batch)] if batch else []),
            *(["--backend", compiled[0], "--compile"] if compiled else [])]
    done, _ = mpirun(ranks, argv, timeout=180.0 if compiled else 60.0)
    assert done.returncode == 0, done.stderr
    problem = Problem.from_recipe(example, 1, epochs)
    if batch:
        problem = dataclasses.replace(problem, batch_size=batch)
    single = train(problem, Target("numpy", "cpu", dtype))
    results = [np.load(tmp_path / f"rank{r}-{dtype}.npz") for r in range(ranks)]
    rank0 = {k.removeprefix("param/"): results[0][k] for k in results[0].files if k.startswith("param/")}
    assert rank0.keys() == single.final.keys()
    worst = max(float(np.max(np.abs(rank0[k] - single.final[k]))) for k in rank0)
    assert worst <= tol, f"max |dW| {worst:.3g} > {tol:g}"
    for other in results[1:]:
        for key, value in rank0.items():
            assert other[f"param/{key}"].tobytes() == value.tobytes(), f"{key} differs between ranks"
    assert len(results[0]["losses"]) == len(single.losses)  # the same global batches, step by step
    assert (int(results[0]["traces"]) > 0) == bool(compiled)  # compiled: gradients and commit were traced
    np.testing.assert_allclose(results[0]["losses"], single.losses, rtol=10 * tol, atol=0)


FAILING = textwrap.dedent("""
    import portnn
    from portnn import datasets, distributed

    class Boom(portnn.Identity):
        keyed = True  # be given ctx.key = (seed, layer, epoch, batch) while training, as Dropout is

        def forward(self, params, x, ctx):
            if comm.rank == 1 and ctx.key is not None and ctx.key[-1] == 3:
                raise RuntimeError("boom on rank 1 at batch 4")
            return x, None

    comm = distributed.MPICommunicator()
    X, y = datasets.regression(seed=1)
    net = portnn.Sequential(portnn.Dense(5, 8), Boom(), portnn.Dense(8, 2))
    net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1), epochs=1000, batch_size=16, communicator=comm)
""")


def test_a_rank_that_raises_aborts_the_job_fast_with_its_error(tmp_path: Path) -> None:
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    done, seconds = mpirun(2, [str(script)], timeout=60)
    assert done.returncode != 0
    assert "RuntimeError: boom on rank 1 at batch 4" in done.stderr
    assert seconds < 30  # rank 0 would otherwise wait in Allreduce until the timeout


def test_ranks_given_different_data_fail_instead_of_hanging(tmp_path: Path) -> None:
    script = tmp_path / "mismatch.py"
    script.write_text(textwrap.dedent("""
        import portnn
        from portnn import datasets, distributed

        comm = distributed.MPICommunicator()
        X, y = datasets.regression(seed=1, n=64 + comm.rank)
        net = portnn.Sequential(portnn.Dense(5, 2))
        net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1), batch_size=16, communicator=comm)
    """))
    done, _ = mpirun(2, [str(script)], timeout=60)
    assert done.returncode != 0
    assert "the 2 ranks disagree on data: rank 0: X float64 (64, 5)" in done.stderr
    assert "; rank 1: X float64 (65, 5)" in done.stderr


def test_distributed_parity_report_passes_for_two_ranks() -> None:
    problem = Problem.from_recipe("mlp", 1, 10)  # 40 steps, both dtypes
    report = distributed_parity.check(problem, 2, ("float64", "float32"))
    text = render(report)
    assert report.passed, text
    assert [r.target.backend for r in report.rows] == ["numpy x2 ranks"] * 2
    assert all(r.steps == 40 for r in report.rows)
    assert "2/2 PASS" in text


def test_throughput_rows_for_one_and_two_ranks() -> None:
    rows = distributed_bench.throughput((1, 2), samples=1024, batch=128, epochs=1)
    assert [r["ranks"] for r in rows] == [1, 2]
    assert all(r["samples_per_s"] > 0 and r["epoch_s"] > 0 for r in rows)
    assert rows[0]["speedup"] == 1.0
    assert "samples/s" in distributed_bench.throughput_table(rows)


def test_portnn_train_distributed_prints_and_saves_once_with_the_single_process_weights(tmp_path: Path) -> None:
    saved = tmp_path / "mlp.npz"
    done, _ = mpirun(2, ["-m", "portnn", "train", "--distributed", "--example", "mlp", "--epochs", "6", "--save",
                         str(saved)])
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("portnn train:") == 1  # rank 1 is silent
    assert done.stdout.count("epoch      6  loss") == 1
    assert "data-parallel over 2 MPI rank(s)" in done.stdout
    assert "weights bit-identical on all 2 ranks" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.npz"]  # one file, no temporary left behind
    assert main(["train", "--example", "mlp", "--epochs", "6", "--quiet", "--save", str(tmp_path / "one.npz")]) == 0
    dist, one = checkpoint.load(saved), checkpoint.load(tmp_path / "one.npz")
    assert dist.epoch == one.epoch == 6
    a, b = dist.state_dict(), one.state_dict()
    assert max(float(np.max(np.abs(a[k] - b[k]))) for k in b) < 1e-12
    np.testing.assert_allclose(dist.history["loss"], one.history["loss"], rtol=1e-12)


def test_portnn_parity_distributed_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parity", "--example", "seed", "--epochs", "50", "--dtype", "float64", "--distributed", "3"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("numpy x3 ranks"))
    assert row.split()[-1] == "PASS"
    assert " 50 " in row
