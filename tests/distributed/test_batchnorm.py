"""Data-parallel BatchNorm: the batch statistics are the global batch's (SyncBatchNorm), so 2 and 4 ranks end with the
single-process weights and running statistics (float64, 1e-12) — simulated ranks in threads and real MPI jobs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import portnn
from portnn import distributed
from portnn.distributed import launch as distributed_launch

from .test_logic import ThreadGroup, max_diff

RNG = np.random.default_rng(8)
X = RNG.standard_normal((22, 3)) * 2.0 + 1.0
Y = RNG.standard_normal((22, 2))
IMAGES = RNG.standard_normal((20, 1, 5, 5))
CLASSES = RNG.integers(0, 3, 20)


def mlp() -> portnn.Sequential:
    """No bias before a BatchNorm: its gradient is zero up to rounding, which Adam amplifies to ~1e-10."""
    return portnn.Sequential(portnn.Dense(3, 6, bias=False), portnn.BatchNorm1d(6), portnn.ReLU(),
                             portnn.Residual(portnn.Dense(6, 6, bias=False), portnn.BatchNorm1d(6)),
                             portnn.Dense(6, 2), seed=2)


def cnn() -> portnn.Sequential:
    return portnn.Sequential(portnn.Conv2D(1, 3, 3, padding=1, bias=False), portnn.BatchNorm2d(3), portnn.ReLU(),
                             portnn.GlobalAvgPool2D(), portnn.Dense(3, 3), seed=5)


def fit_mlp(comm, loss=portnn.MSE) -> dict[str, np.ndarray]:
    net = mlp()
    net.fit(X, Y, loss=loss(), optimizer=portnn.Adam(0.02), epochs=6, batch_size=8, seed=1, communicator=comm,
            schedule=portnn.StepLR(2, gamma=0.5), clip_norm=1.0)
    return net.state_dict()


def fit_cnn(comm) -> dict[str, np.ndarray]:
    net = cnn()
    net.fit(IMAGES, CLASSES, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1, momentum=0.9), epochs=5,
            batch_size=7, communicator=comm)
    return net.state_dict()


@pytest.mark.parametrize("size", [2, 3, 4])
@pytest.mark.parametrize("loss", [portnn.MSE, portnn.SSE])
def test_simulated_ranks_equal_one_process(size: int, loss) -> None:
    """22 rows in batches of 8 (a last batch of 6): uneven shards; mean and sum losses weight ranks differently."""
    single = fit_mlp(None, loss)
    results = ThreadGroup(size).run(lambda c: fit_mlp(c, loss))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert {k for k in single if "running" in k} == {"1.running_mean", "1.running_var", "3.1.running_mean",
                                                      "3.1.running_var"}
    assert max_diff(results[0], single) < 1e-12
    for other in results[1:]:
        for key, value in results[0].items():
            np.testing.assert_array_equal(other[key], value)  # bit-identical on every rank


@pytest.mark.parametrize("size", [2, 4])
def test_simulated_ranks_batchnorm2d_cnn(size: int) -> None:
    single = fit_cnn(None)
    results = ThreadGroup(size).run(fit_cnn)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert max_diff(results[0], single) < 1e-12


def test_a_batch_smaller_than_the_ranks_is_refused_before_training() -> None:
    def work(comm):
        net = mlp()
        before = net.state_dict()
        try:
            net.fit(X, Y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1), epochs=1, batch_size=7, communicator=comm)
        except ValueError as err:
            return str(err), max_diff(net.state_dict(), before)
        return None

    for message, moved in ThreadGroup(2).run(work):  # 22 rows in batches of 7: a last batch of 1 row
        assert "needs at least one row per rank in every batch" in message
        assert "a batch has 1 rows for 2 ranks" in message
        assert moved == 0.0


def test_one_rank_is_plain_training() -> None:
    np.testing.assert_equal(fit_mlp(distributed.SingleProcess()), fit_mlp(None))


WORKER = textwrap.dedent("""
    import sys
    import numpy as np
    from portnn import distributed
    sys.path.insert(0, sys.argv[2])
    from tests.distributed.test_batchnorm import fit_cnn, fit_mlp

    comm = distributed.MPICommunicator()
    out = {f"mlp/{k}": v for k, v in fit_mlp(comm).items()}
    out.update({f"cnn/{k}": v for k, v in fit_cnn(comm).items()})
    np.savez(f"{sys.argv[1]}/rank{comm.rank}.npz", **out)
""")


@pytest.mark.skipif(not distributed_launch.available(), reason='needs mpi4py and mpiexec (pip install "portnn[mpi]")')
@pytest.mark.parametrize("ranks", [2, 4])
def test_mpi_ranks_equal_one_process(ranks: int, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    root = Path(__file__).resolve().parents[2]
    done, _ = distributed_launch.run(ranks, [str(script), str(tmp_path), str(root)], timeout=120.0)
    assert done.returncode == 0, done.stderr
    single = {**{f"mlp/{k}": v for k, v in fit_mlp(None).items()}, **{f"cnn/{k}": v for k, v in fit_cnn(None).items()}}
    results = [np.load(tmp_path / f"rank{r}.npz") for r in range(ranks)]
    assert set(results[0].files) == set(single)
    assert max(float(np.max(np.abs(results[0][k] - v))) for k, v in single.items()) < 1e-12
    for other in results[1:]:
        for key in single:
            assert other[key].tobytes() == results[0][key].tobytes(), key
