"""Ranks agree on everything that decides the result before a data-parallel fit trains: one Allgather of per-field
hashes; any difference raises RanksDisagree on every rank, naming the field and two real ranks' values, with no
weight touched. Simulated ranks (threads) and real 2-rank MPI jobs, plus jobs bounded by MPIEXEC_TIMEOUT."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import portnn
from portnn import distributed
from portnn.distributed import agreement, data_parallel
from portnn.distributed import launch as distributed_launch

from .test_logic import ThreadGroup, X, Y, small_net

needs_mpi = pytest.mark.skipif(not distributed_launch.available(),
                               reason='needs mpi4py and mpiexec (pip install "portnn[mpi]")')


# ---- the collective ---------------------------------------------------------------------------------------
def test_allgather_stacks_every_ranks_buffer_in_rank_order() -> None:
    single = distributed.SingleProcess()
    buf = np.array([3, -4], dtype=np.int64)
    out = single.allgather(buf)
    assert out.shape == (1, 2)
    assert out.tolist() == [[3, -4]]
    out[0, 0] = 9  # a new array: the caller's buffer is untouched
    assert buf.tolist() == [3, -4]
    # the base class's default (one broadcast per rank), as communicators without their own allgather get it
    tables = ThreadGroup(3).run(lambda c: c.allgather(np.array([c.rank, 10 * c.rank + 1], dtype=np.int64)))
    for table in tables:
        assert table.dtype == np.int64
        assert table.tolist() == [[0, 1], [1, 11], [2, 21]]
    with pytest.raises(TypeError, match=r"SingleProcess\.allgather: needs a 1-D host NumPy array"):
        single.allgather(np.zeros((2, 2)))


# ---- what is compared ---------------------------------------------------------------------------------------
def prints(net: portnn.Sequential, x: np.ndarray = X, y: np.ndarray = Y, **kw: Any) -> dict[str, tuple[str, int]]:
    """The fingerprint of ``net`` right after a one-epoch fit on (x, y) (placement, loss, optimizer set)."""
    net.fit(x, y, loss=kw.pop("loss", portnn.MSE()), optimizer=kw.pop("optimizer", portnn.SGD(0.1)), epochs=1,
            batch_size=4, seed=3)
    args = {"batch_size": 4, "epochs": 2, "shuffle": True, **kw}
    return distributed.fingerprint(net, (x, y), **args)


def test_fingerprint_covers_every_field_and_is_reproducible() -> None:
    a, b = prints(small_net()), prints(small_net())
    assert tuple(a) == distributed.FIELDS
    assert a == b  # two processes with the same data, model and arguments agree
    assert a["architecture"][0] == ("Dense(in_features=3, out_features=5, bias=True, init='glorot_uniform') -> Tanh()"
                                    " -> Dense(in_features=5, out_features=2, bias=True, init='glorot_uniform')")
    assert a["optimizer"][0] == "SGD(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0)"
    assert a["params"][0] == "32 values in 4 arrays"
    assert a["epoch"][0] == "1"
    assert a["data"][0].startswith("X float64 (21, 3) mean ")


@pytest.mark.parametrize(("change", "field"), [
    (lambda: {"x": np.nextafter(X, np.inf)}, "data"),  # one ulp on every value
    (lambda: {"x": X.reshape(3, 21).reshape(21, 3, order="F")}, "data"),  # the same values, another order
    (lambda: {"y": Y * 2.0}, "data"),
    (lambda: {"net": portnn.Sequential(portnn.Dense(3, 5), portnn.ReLU(), portnn.Dense(5, 2))}, "architecture"),
    (lambda: {"net": portnn.Sequential(portnn.Dense(3, 5), portnn.Tanh(), portnn.Dense(5, 2, bias=False))},
     "architecture"),
    (lambda: {"loss": portnn.SSE()}, "loss"),
    (lambda: {"optimizer": portnn.SGD(0.1, momentum=0.5)}, "optimizer"),
    (lambda: {"optimizer": portnn.SGD(0.1, weight_decay=1e-4)}, "optimizer"),
    (lambda: {"batch_size": 5}, "batch_size"),
    (lambda: {"epochs": 3}, "epochs"),
    (lambda: {"shuffle": False}, "shuffle"),
])
def test_each_change_moves_its_own_field_hash(change: Callable[[], dict[str, Any]], field: str) -> None:
    base = prints(small_net())
    kw = change()
    net = kw.pop("net", None) or small_net()
    other = prints(net, kw.pop("x", X), kw.pop("y", Y), **kw)
    moved = [k for k in distributed.FIELDS if other[k][1] != base[k][1]]
    assert field in moved
    assert other[field][0] != base[field][0]  # the readable value shows the difference too


def test_data_digest_is_the_same_on_every_backend(case: Any) -> None:
    x = case.asarray(X)
    expected = agreement.data_digest({"X": np.asarray(X, dtype=case.dtype_name)})
    assert agreement.data_digest({"X": x}) == expected


def test_optimizer_state_shows_slots_and_step_counters() -> None:
    net = small_net()
    net.fit(X, Y, loss=portnn.MSE(), optimizer=portnn.Adam(0.01), epochs=1, batch_size=4, seed=3)
    text, canon = agreement.state_summary(net.optimizer_state)
    assert text == "m, v of 4 parameters; step 6"  # 21 rows in batches of 4: 6 steps
    names = ["0.bias", "0.weight", "2.bias", "2.weight"]  # the slots' presence per parameter, not their values
    assert canon == {"m": names, "v": names, "step": 6}
    assert agreement.state_summary({}) == ("none", {})  # SGD without momentum keeps no state
    net.fit(X, Y, optimizer=portnn.SGD(0.1, momentum=0.9), epochs=1, batch_size=4)
    assert agreement.state_summary(net.optimizer_state) == ("velocity of 4 parameters", {"velocity": names})


def test_long_values_are_clipped_around_their_first_difference() -> None:
    a = "Dense(8) -> " * 40 + "Tanh()" + " -> Dense(8)" * 40
    b = a.replace("Tanh()", "ReLU()")
    short_a, short_b = agreement.clip(a, b, width=60)
    assert "Tanh()" in short_a
    assert "ReLU()" in short_b
    assert short_a.startswith("...")
    assert short_a.endswith("...")
    assert len(short_a) <= 66
    assert agreement.clip("SGD(lr=0.1)", "SGD(lr=0.2)") == ("SGD(lr=0.1)", "SGD(lr=0.2)")


# ---- simulated ranks: every rank raises the same message, nothing is trained --------------------------------
def refused(size: int, differ: Callable[[int], dict[str, Any]]) -> tuple[list[Any], list[bool]]:
    """A fit on ``size`` simulated ranks where rank r uses ``differ(r)``'s overrides; returns (results by rank,
    whether each rank's weights were untouched)."""
    untouched = [False] * size

    def work(comm: distributed.Communicator) -> Any:
        kw = {"x": X, "y": Y, "net": None, "loss": portnn.MSE(), "optimizer": portnn.Adam(0.01), "batch_size": 4,
              "epochs": 3, "seed": 3, **differ(comm.rank)}
        net = kw["net"] or small_net()
        if kw.get("resumed"):  # trained an epoch on its own first (as from a checkpoint)
            net.fit(kw["x"], kw["y"], loss=kw["loss"], optimizer=kw["optimizer"], epochs=1, batch_size=4, seed=3)
            net.epoch = kw.get("epoch", net.epoch)
        before = net.state_dict()
        try:
            net.fit(kw["x"], kw["y"], loss=kw["loss"], optimizer=kw["optimizer"], epochs=kw["epochs"],
                    batch_size=kw["batch_size"], seed=kw["seed"], communicator=comm)
        finally:
            after = net.state_dict()
            # placement casts to the model's dtype; any training step would move the values far more
            untouched[comm.rank] = all(np.array_equal(before[k].astype(after[k].dtype), after[k]) for k in before)
        return net

    return ThreadGroup(size).run(work), untouched


# name: (rank that differs, its overrides, field named, its two values as shown)
SIMULATED: dict[str, tuple[int, dict[str, Any], str, tuple[str, str]]] = {
    "x-plus-100": (1, {"x": X + 100.0}, "data", (f"X float64 (21, 3) mean {X.mean():.6g}, y float64 (21, 2)",
                                                  f"X float64 (21, 3) mean {X.mean() + 100:.6g}, y")),
    "fewer-rows": (2, {"x": X[:20], "y": Y[:20]}, "data", ("X float64 (21, 3)", "X float64 (20, 3)")),
    "lr": (1, {"optimizer": portnn.Adam(0.02)}, "optimizer", ("Adam(lr=0.01,", "Adam(lr=0.02,")),
    "optimizer-type": (1, {"optimizer": portnn.SGD(0.01)}, "optimizer", ("Adam(lr=0.01,", "SGD(lr=0.01,")),
    "loss": (1, {"loss": portnn.SSE()}, "loss", ("MSE()", "SSE()")),
    "activation": (2, {"net": portnn.Sequential(portnn.Dense(3, 5), portnn.ReLU(), portnn.Dense(5, 2))},
                   "architecture", ("-> Tanh() ->", "-> ReLU() ->")),
    "width": (1, {"net": portnn.Sequential(portnn.Dense(3, 6), portnn.Tanh(), portnn.Dense(6, 2))},
              "architecture", ("out_features=5", "out_features=6")),
    "batch-size": (1, {"batch_size": 8}, "batch_size", ("4", "8")),
    "epochs": (2, {"epochs": 4}, "epochs", ("3", "4")),
    "shuffle-seed": (1, {"seed": 4}, "shuffle_seed", ("3", "4")),
    "model-seed": (1, {"net": portnn.Sequential(portnn.Dense(3, 5), portnn.Tanh(), portnn.Dense(5, 2), seed=1)},
                   "seed", ("0", "1")),
    "dtype": (1, {"net": portnn.Sequential(portnn.Dense(3, 5), portnn.Tanh(), portnn.Dense(5, 2), dtype="float32")},
              "dtype", ("float64", "float32")),
    "resumed": (1, {"resumed": True}, "epoch", ("0", "1")),
    "stale-step": (1, {"resumed": True, "epoch": 0}, "optimizer_state", ("step 0", "step 6")),
}


@pytest.mark.parametrize("name", list(SIMULATED))
def test_a_rank_that_differs_is_refused_on_every_rank(name: str) -> None:
    odd, overrides, field, (first, second) = SIMULATED[name]
    size = 3
    results, untouched = refused(size, lambda r: overrides if r == odd else {})
    assert all(isinstance(r, distributed.RanksDisagree) for r in results), results
    message = str(results[0])
    assert {str(r) for r in results} == {message}  # the same message on every rank
    assert f"the {size} ranks disagree on {field}: rank 0: " in message
    value0, value_odd = message.split(": rank 0: ", 1)[1].split(f"; rank {odd}: ", 1)
    assert first in value0, message
    assert second in value_odd, message
    assert f"1 of {size} ranks differ from rank 0" in message
    assert all(untouched)  # refused before the weight broadcast and any step


def test_the_message_names_the_first_rank_that_differs_and_counts_the_rest() -> None:
    results, _ = refused(3, lambda r: {"loss": portnn.SSE()} if r else {})
    message = str(results[0])
    assert "disagree on loss: rank 0: MSE(); rank 1: SSE() (2 of 3 ranks differ from rank 0)" in message
    assert "rank 0: MSE(); rank 0" not in message


def test_later_differences_are_listed_after_the_first() -> None:
    results, _ = refused(2, lambda r: {"loss": portnn.SSE(), "batch_size": 8, "seed": 9} if r else {})
    assert "they also disagree on shuffle_seed, batch_size)" in str(results[0])


def test_a_refused_fit_leaves_the_model_as_it_was() -> None:
    def work(comm: distributed.Communicator) -> tuple[bool, BaseException | None]:
        net, sgd = small_net(), portnn.SGD(0.1, momentum=0.9)
        net.fit(X, Y, loss=portnn.MSE(), optimizer=sgd, epochs=1, batch_size=4, seed=1)
        before = (net.loss, net.optimizer, net.metrics, net.shuffle_seed, net.epoch, net.state_dict(),
                  dict(net.optimizer_state))
        err = None
        try:
            net.fit(X, Y, loss=portnn.SSE() if comm.rank else portnn.MSE(), optimizer=portnn.Adam(0.1), epochs=1,
                    batch_size=4, seed=7, communicator=comm)
        except distributed.RanksDisagree as caught:
            err = caught
        after = (net.loss, net.optimizer, net.metrics, net.shuffle_seed, net.epoch, net.state_dict(),
                 net.optimizer_state)
        same = (after[:5] == before[:5] and all(np.array_equal(before[5][k], after[5][k]) for k in before[5])
                and after[6].keys() == before[6].keys() == {"velocity"}
                and after[6]["velocity"] is before[6]["velocity"])  # SGD's momentum, not a fresh Adam state
        return same, err

    for same, err in ThreadGroup(2).run(work):
        assert isinstance(err, distributed.RanksDisagree)
        assert same  # loss, optimizer, seeds, epoch, weights and optimizer state as before the refused fit


def test_a_group_of_one_skips_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("fingerprint computed")

    monkeypatch.setattr(data_parallel, "fingerprint", fail)  # where DataParallel.begin looks it up
    net = small_net()
    net.fit(X, Y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1), epochs=1, communicator=distributed.SingleProcess())
    assert net.epoch == 1
    # the patch is on the path fit takes: a group of two does compute it
    results = ThreadGroup(2).run(lambda c: small_net().fit(X, Y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1),
                                                           communicator=c))
    assert all(isinstance(r, AssertionError) and str(r) == "fingerprint computed" for r in results), results


# ---- real MPI jobs ------------------------------------------------------------------------------------------
# fit-case --differ NAME changes one thing on rank 1: (field named, text in rank 0's value, text in rank 1's)
MPI_CASES = {
    "x": ("data", "X float64 (64, 5) mean -0.102187", "X float64 (64, 5) mean 99.8978"),
    "lr": ("optimizer", "Adam(lr=0.01,", "Adam(lr=0.2,"),
    "loss": ("loss", "MSE()", "SSE()"),
    "activation": ("architecture", "-> Tanh() ->", "-> ReLU() ->"),
    "batch-size": ("batch_size", "16", "8"),
    "seed": ("shuffle_seed", "3", "4"),
    "resumed": ("epoch", "0", "1"),
}


def fit_case(differ: str, out: Path) -> Any:
    done, seconds = distributed_launch.run(2, ["-m", "portnn.distributed.worker", "--differ", differ,
                                               "--out", str(out)], timeout=60)
    return done, seconds


@needs_mpi
@pytest.mark.parametrize("differ", list(MPI_CASES))
def test_mpi_ranks_that_differ_exit_non_zero_naming_the_field_on_every_rank(differ: str, tmp_path: Path) -> None:
    field, first, second = MPI_CASES[differ]
    done, _ = fit_case(differ, tmp_path)
    assert done.returncode != 0
    assert not list(tmp_path.glob("rank*.npz")), "a rank trained and wrote weights"
    messages = [(tmp_path / f"error-rank{r}.txt").read_text() for r in (0, 1)]
    assert messages[0] == messages[1]  # every rank raised, with the same message
    assert f"the 2 ranks disagree on {field}: rank 0: " in messages[0]
    value0, value1 = messages[0].split(": rank 0: ", 1)[1].split("; rank 1: ", 1)
    assert first in value0, messages[0]
    assert second in value1, messages[0]
    assert "RanksDisagree" in done.stderr


@needs_mpi
def test_mpi_ranks_that_agree_train_and_write_identical_weights(tmp_path: Path) -> None:
    done, _ = fit_case("none", tmp_path)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob("error-*"))
    w0, w1 = (np.load(tmp_path / f"rank{r}.npz") for r in (0, 1))
    assert w0.files == w1.files
    assert len(w0.files) == 4
    assert all(w0[k].tobytes() == w1[k].tobytes() for k in w0.files)


STALLING = textwrap.dedent("""
    import os, signal, sys
    from mpi4py import MPI
    import numpy as np

    comm = MPI.COMM_WORLD
    if comm.rank == 1:  # stalls without raising: python -m mpi4py cannot abort the job for it
        with open(sys.argv[1], "w") as f:
            f.write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGSTOP)
    comm.Allreduce(MPI.IN_PLACE, np.ones(4))  # rank 0 waits here for rank 1
    print("finished")
""")


def gone(pid: int) -> bool:
    """True when process ``pid`` has exited (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@needs_mpi
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to check that the stopped rank is gone")
def test_a_stalled_rank_is_ended_within_the_mpiexec_timeout(tmp_path: Path) -> None:
    script, pid_file = tmp_path / "stall.py", tmp_path / "pid"
    script.write_text(STALLING)
    bound = 2
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match=r"MPIEXEC_TIMEOUT=2 s and mpiexec ended it after [\d.]+ s \(exit [1-9]"):
        distributed_launch.run(2, [str(script), str(pid_file)], timeout=bound)
    seconds = time.perf_counter() - start
    assert bound <= seconds < bound + distributed_launch.GRACE / 2  # mpiexec's bound, not the launcher's kill
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(pid), "the stopped rank outlived the job"


ECHO = "import os; print('MPIEXEC_TIMEOUT=' + os.environ.get('MPIEXEC_TIMEOUT', 'unset'))\n"


@needs_mpi
def test_the_launcher_sets_mpiexec_timeout_unless_the_caller_did(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "echo.py"
    script.write_text(ECHO)
    monkeypatch.delenv("MPIEXEC_TIMEOUT", raising=False)
    done, _ = distributed_launch.run(1, [str(script)], timeout=41.5)
    assert done.stdout.split() == ["MPIEXEC_TIMEOUT=42"]  # whole seconds, rounded up
    monkeypatch.setenv("MPIEXEC_TIMEOUT", "77")
    done, _ = distributed_launch.run(1, [str(script)], timeout=41.5)
    assert done.stdout.split() == ["MPIEXEC_TIMEOUT=77"]
    assert os.environ["MPIEXEC_TIMEOUT"] == "77"  # the caller's environment is left as it was
    with pytest.raises(ValueError, match=r"timeout \(seconds\) must be a finite number > 0, got 0"):
        distributed_launch.run(1, [str(script)], timeout=0)
