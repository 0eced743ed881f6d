"""Data-parallel training without MPI: sharding, the weighted flat buffer, and whole ``fit`` runs of R ranks
simulated in one process (threads joined by a fake communicator that sums in rank order)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import portnn
from portnn import distributed, host

RNG = np.random.default_rng(7)
X = RNG.standard_normal((21, 3))
Y = np.tanh(X @ RNG.standard_normal((3, 2)))
LABELS = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0).astype(np.int64)


def small_net(seed: int = 0, classes: int = 2) -> portnn.Sequential:
    return portnn.Sequential(portnn.Dense(3, 5), portnn.Tanh(), portnn.Dense(5, classes), seed=seed)


# ---- a fake group of R "ranks" in one process ---------------------------------------------------------------
class ThreadGroup:
    """R communicators for R threads: collectives meet at a barrier; sums are taken in rank order, so every rank
    gets the bit-identical result (as MPI does)."""

    def __init__(self, size: int, device_buffers: bool = False) -> None:
        self.size, self.device_buffers = size, device_buffers
        self.barrier = threading.Barrier(size, timeout=10)  # a rank left waiting fails after 10 s, never hangs
        self.slots: list[Any] = [None] * size

    def member(self, rank: int) -> distributed.Communicator:
        group = self

        class Member(distributed.Communicator):
            device_buffers = group.device_buffers  # True: device arrays pass without a host copy, as with NCCL

            def allreduce(self, buffer: Any) -> Any:
                exchanged = self._exchange(buffer)
                total = exchanged[0]
                for other in exchanged[1:]:
                    total = total + other  # a new array: nobody shares a buffer
                return total if len(exchanged) > 1 or not isinstance(total, np.ndarray) else total.copy()

            def broadcast(self, buffer: Any, root: int = 0) -> Any:
                chosen = self._exchange(buffer)[root]
                return chosen.copy() if isinstance(chosen, np.ndarray) else chosen

            def barrier(self) -> None:
                self._exchange(np.zeros(0))

            def _exchange(self, buffer: Any) -> list[Any]:
                if isinstance(buffer, np.ndarray):
                    buffer = buffer.copy()
                elif not group.device_buffers:
                    raise TypeError(f"host buffers only, got {type(buffer).__name__}")
                group.slots[self.rank] = buffer
                group.barrier.wait()
                seen = list(group.slots)
                group.barrier.wait()  # nobody overwrites a slot before all have read
                return seen

        m = Member()
        m.rank, m.size = rank, self.size
        return m

    def run(self, work: Callable[[distributed.Communicator], Any]) -> list[Any]:
        """``work(comm)`` on every rank in its own thread; the results by rank, or the exceptions by rank."""
        results: list[Any] = [None] * self.size

        def target(rank: int) -> None:
            try:
                results[rank] = work(self.member(rank))
            except BaseException as err:
                results[rank] = err

        threads = [threading.Thread(target=target, args=(r,)) for r in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a simulated rank hung"
        return results


def weights(net: portnn.Sequential) -> dict[str, np.ndarray]:
    return net.state_dict()


def max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


# ---- sharding and weights ---------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("rows", [0, 1, 3, 16, 21])
def test_shards_cover_the_batch_in_order_with_sizes_differing_by_at_most_one(rows: int, size: int) -> None:
    bounds = [distributed.shard(rows, r, size) for r in range(size)]
    assert bounds[0][0] == 0
    assert bounds[-1][1] == rows
    assert all(bounds[r][1] == bounds[r + 1][0] for r in range(size - 1))
    counts = [hi - lo for lo, hi in bounds]
    assert counts == [len(part) for part in np.array_split(np.arange(rows), size)]


@pytest.mark.parametrize(("rows", "rank", "size"), [(4, 2, 2), (4, -1, 2), (4, 0, 0), (-1, 0, 1)])
def test_shard_rejects_bad_arguments(rows: int, rank: int, size: int) -> None:
    with pytest.raises(ValueError, match="shard: need 0 <= rank < size"):
        distributed.shard(rows, rank, size)


def test_weights_make_mean_and_sum_losses_add_up_to_the_global_batch() -> None:
    assert distributed.weight(portnn.MSE(), 3, 8) == 3 / 8
    assert distributed.weight(portnn.SoftmaxCrossEntropy(), 5, 8) == 5 / 8
    assert distributed.weight(portnn.SSE(), 3, 8) == 1.0
    assert distributed.weight(portnn.MSE(), 0, 8) == 0.0


def test_pack_then_unpack_round_trips_on_every_backend(case: Any) -> None:
    # a parameter tree: one {name: array} per layer, {} for a parameter-free layer
    tree = [{"w": case.asarray(RNG.standard_normal((3, 4))), "b": case.asarray(RNG.standard_normal(4))}, {},
            {"b": case.asarray(RNG.standard_normal(2))}]
    leaves = [a for layer in tree for a in layer.values()]
    buffer = distributed.pack(leaves, case.xp)  # on the device: a collective stages it to the host if it must
    assert buffer.shape == (18,)
    assert buffer.dtype == case.dtype
    back = distributed.unpack(buffer, tree, case.xp, case.device, case.dtype)
    assert [list(layer) for layer in back] == [["w", "b"], [], ["b"]]  # the same structure, in the same order
    for layer, original in zip(back, tree, strict=True):
        for name, a in original.items():
            assert layer[name].dtype == case.dtype
            assert layer[name].device == a.device
            np.testing.assert_array_equal(host.to_numpy(layer[name]), host.to_numpy(a))
    with pytest.raises(ValueError, match="buffer has 19 values, the parameters need 18"):
        distributed.unpack(np.zeros(19, dtype=case.dtype_name), tree, case.xp, case.device, case.dtype)


class Recording(distributed.Communicator):
    """A rank whose Allreduce returns its own buffer (as if the others sent zeros) and keeps a copy."""

    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size
        self.sent: list[np.ndarray] = []

    def allreduce(self, buffer: np.ndarray) -> np.ndarray:
        self.sent.append(np.array(buffer, copy=True))
        return np.array(buffer, copy=True)


@pytest.mark.parametrize(("loss", "size"), [(portnn.MSE, 5), (portnn.SSE, 3), (portnn.SoftmaxCrossEntropy, 2)])
def test_rank_buffers_sum_to_the_global_batch_gradient_and_loss(case: Any, loss: type, size: int) -> None:
    if case.backend.name == "jax":
        pytest.skip("JAX eager compiles every op anew for each slice shape (~3 s a case); JAX's staging path is "
                    "covered by the single-process and simulated-rank fits")
    rows = 4  # with 5 ranks one rank has no rows and sends zeros
    classification = loss is portnn.SoftmaxCrossEntropy
    X_b = case.asarray(X[:rows])
    y_b = case.asarray(LABELS[:rows], dtype=case.ints) if classification else case.asarray(Y[:rows])
    net = small_net(classes=3 if classification else 2).to(case.xp, case.device, case.dtype_name)
    step = net.step(loss(), portnn.SGD(0.1))
    value, grads, _, _ = step.gradients(net.params, net.state, X_b, y_b, (0, 0))  # the whole batch in one process
    expected = np.concatenate([host.to_numpy(g).reshape(-1) for layer in grads for g in layer.values()]
                              + [[host.to_float(value)]])
    buffers = []
    for rank in range(size):
        comm = Recording(rank, size)
        parallel = comm.data_parallel()  # the strategy fit uses: this rank's part, then the collective
        packed = parallel.local(step, net.params, net.state, X_b, y_b, (0, 0), None)[0]
        parallel.unpack(parallel.reduce(packed), net.params, step)
        assert len(comm.sent) == 1  # one Allreduce per step
        buffers.append(comm.sent[0])
    assert all(b.dtype == np.dtype(case.dtype_name) for b in buffers)
    assert not buffers[-1].any() if size == 5 else True  # shard(4, 4, 5) is empty
    total = np.sum(buffers, axis=0)
    tol = 1e-13 if case.dtype_name == "float64" else 2e-6
    np.testing.assert_allclose(total, expected, rtol=tol, atol=tol)


# ---- whole fits ---------------------------------------------------------------------------------------------
def fit_on(comm: distributed.Communicator | None, *, loss: Callable = portnn.MSE, optimizer: Callable | None = None,
           epochs: int = 10, batch_size: int | None = 4, seed: int = 0, case: Any = None,
           x: np.ndarray = X, y: np.ndarray = Y) -> tuple[dict[str, np.ndarray], portnn.History]:
    net = small_net(seed, classes=3 if loss is portnn.SoftmaxCrossEntropy else 2)
    if case is not None:
        net.to(case.xp, case.device, case.dtype_name)
        x_in, y_in = case.asarray(x), case.asarray(y, dtype=None if y.dtype.kind == "i" else "model")
    else:
        x_in, y_in = x, y
    history = net.fit(x_in, y_in, loss=loss(), optimizer=(optimizer or (lambda: portnn.SGD(0.1, momentum=0.9)))(),
                      epochs=epochs, batch_size=batch_size, seed=3, communicator=comm,
                      compile=False)  # data-parallel training is eager: compare it with the eager single process
    return weights(net), history


def test_single_process_communicator_gives_the_bit_identical_result_on_every_backend(case: Any) -> None:
    # whole batches: one shape per op (JAX compiles each anew)
    rows: dict[str, Any] = {"x": X[:20], "y": Y[:20], "epochs": 2}
    plain, h_plain = fit_on(None, case=case, **rows)
    staged, h_staged = fit_on(distributed.SingleProcess(), case=case, **rows)
    for key in plain:
        np.testing.assert_array_equal(staged[key], plain[key])
    assert list(h_staged) == list(h_plain)


@pytest.mark.parametrize("size", [2, 3, 4])
@pytest.mark.parametrize(("loss", "labels"), [(portnn.MSE, False), (portnn.SSE, False),
                                              (portnn.SoftmaxCrossEntropy, True)])
def test_simulated_ranks_train_like_one_process(size: int, loss: type, labels: bool) -> None:
    y = LABELS if labels else Y  # 21 rows, batches of 4: uneven slices, and a last batch of 1 row
    optimizer = lambda: portnn.Adam(0.01)  # noqa: E731
    single, h_single = fit_on(None, loss=loss, optimizer=optimizer, y=y, epochs=8)
    results = ThreadGroup(size).run(lambda c: fit_on(c, loss=loss, optimizer=optimizer, y=y, epochs=8))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert max_diff(results[0][0], single) < 1e-12
    for w, _ in results[1:]:
        for key in w:
            np.testing.assert_array_equal(w[key], results[0][0][key])  # bit-identical on every rank
    np.testing.assert_allclose(list(results[0][1]), list(h_single), rtol=1e-12)
    for key in h_single.metrics:  # accuracy counts are summed over ranks
        np.testing.assert_allclose(results[0][1].metrics[key], h_single.metrics[key], rtol=1e-12)


@pytest.mark.parametrize("device_buffers", [False, True], ids=["host-staged", "device-buffers"])
def test_simulated_ranks_on_every_backend_in_float32(case: Any, device_buffers: bool) -> None:
    if case.dtype_name != "float32":
        pytest.skip("float32 row of the matrix (float64 is covered on NumPy above)")
    single, _ = fit_on(None, case=case, epochs=5)
    results = ThreadGroup(3, device_buffers).run(lambda c: fit_on(c, case=case, epochs=5))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert max_diff(results[0][0], single) < 1e-5
    assert all(max_diff(w, results[0][0]) == 0.0 for w, _ in results[1:])


def test_rank_zero_weights_are_broadcast_at_the_start() -> None:
    single, _ = fit_on(None, seed=0, epochs=2)

    def work(comm: distributed.Communicator) -> dict[str, np.ndarray]:
        net = small_net(0)
        if comm.rank == 1:  # the same model seed (the ranks must agree on it) but other weights, as if loaded
            net.load_state_dict(small_net(11).state_dict())
        net.fit(X, Y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1, momentum=0.9), epochs=2, batch_size=4, seed=3,
                communicator=comm)
        return weights(net)

    results = ThreadGroup(2).run(work)
    assert max_diff(results[1], single) < 1e-12
    assert max_diff(results[1], results[0]) == 0.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns about the overflow before portnn raises
def test_a_non_finite_loss_stops_every_rank_with_the_same_rollback() -> None:
    huge = lambda: portnn.SGD(50.0)  # noqa: E731 - diverges within a few steps
    net = small_net()
    with pytest.raises(FloatingPointError) as single_err:
        net.fit(X, Y, loss=portnn.MSE(), optimizer=huge(), epochs=50, batch_size=4, seed=3)
    expected = weights(net)

    def work(comm: distributed.Communicator) -> tuple[BaseException, dict[str, np.ndarray]]:
        net = small_net()
        try:
            net.fit(X, Y, loss=portnn.MSE(), optimizer=huge(), epochs=50, batch_size=4, seed=3, communicator=comm)
        except FloatingPointError as err:
            return err, weights(net)
        raise AssertionError("no FloatingPointError")

    results = ThreadGroup(3).run(work)
    for err, w in results:
        assert str(err) == str(single_err.value)  # same epoch and batch on every rank
        assert all(np.isfinite(v).all() for v in w.values())
        for key in w:  # the weights have grown to ~1e151 by then: compare relatively
            np.testing.assert_allclose(w[key], expected[key], rtol=1e-9)


def test_ranks_with_different_data_all_raise_instead_of_hanging() -> None:
    results = ThreadGroup(3).run(lambda c: fit_on(c, x=X[: 20 + (c.rank == 2)], y=Y[: 20 + (c.rank == 2)]))
    assert all(isinstance(r, distributed.RanksDisagree) for r in results), results
    assert len({str(r) for r in results}) == 1  # the same message on every rank
    assert "the 3 ranks disagree on data: rank 0: X float64 (20, 3)" in str(results[0])
    assert "; rank 2: X float64 (21, 3)" in str(results[0])


def test_mpi_communicator_names_the_extra_when_mpi4py_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r'pip install "portnn\[mpi\]"'):
        distributed.MPICommunicator()


def test_single_process_collectives_and_their_argument_checks() -> None:
    comm = distributed.SingleProcess()
    buf = np.arange(3.0)
    assert comm.allreduce(buf) is buf  # the sum over one rank, without a copy
    copy = comm.broadcast(buf)
    copy[0] = 9.0
    assert buf.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="root must be 0"):
        comm.broadcast(buf, root=1)
    with pytest.raises(ValueError, match="kind must be 'mpi' or 'single'"):
        distributed.communicator("gloo")


def test_dropout_masks_match_one_process_on_every_rank_count() -> None:
    def fit(comm: distributed.Communicator | None) -> dict[str, np.ndarray]:
        net = portnn.Sequential(portnn.Dense(3, 16), portnn.ReLU(), portnn.Dropout(0.5), portnn.Dense(16, 2), seed=0)
        net.fit(X, Y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1), epochs=4, batch_size=8, seed=3,
                communicator=comm)
        return weights(net)

    single = fit(None)
    for size in (2, 3):  # masks are drawn for the global batch and sliced, not drawn per slice
        results = ThreadGroup(size).run(fit)
        assert max_diff(results[0], single) < 1e-12, size
