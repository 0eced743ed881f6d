"""Compiled training (jax.jit; torch.compile): the same weights as NumPy within the backend tolerances on the seed,
mlp and a dropout CNN; at most two traces per fit and none for a second fit; the same errors, rollback, history
and callbacks as eager training; a step that cannot be traced falls back to eager under compile='auto'."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pytest

import portnn
import portnn.distributed
from portnn import backends, recipes
from portnn.train.trainer import readable

COMPILING = [pytest.param(name, id=f"{name}-{backends.get(name).compile['method']}",
                          marks=[getattr(pytest.mark, name)] + ([] if backends.get(name).installed()
                                                                  else [pytest.mark.skip(reason=f"{name} missing")]))
             for name, b in backends.registry().items() if b.compile.get("method", "none") != "none"]
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # torch's inductor uses its own deprecated APIs
              pytest.mark.filterwarnings("ignore:Dynamo detected:UserWarning"),  # torch's tracer about array-api-extra
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]  # NumPy's overflow warnings in the failure cases


def load(name: str) -> tuple[Any, Any]:
    return backends.load(name)


def problems() -> dict[str, tuple]:
    seed, mlp = recipes.get("seed"), recipes.get("mlp")
    cnn = recipes.get("dropout-cnn")
    return {
        "seed": (lambda: seed.model(1), *seed.data(), seed.loss, lambda: seed.optimizer(seed.lr),
                 {"epochs": 300}),
        "mlp": (lambda: mlp.model(1), *mlp.data(), mlp.loss, lambda: mlp.optimizer(mlp.lr),
                {"epochs": 10, "batch_size": 16}),
        "dropout-cnn": (lambda: cnn.model(1), *cnn.data(), cnn.loss, lambda: cnn.optimizer(cnn.lr),
                        {"epochs": 2, "batch_size": cnn.batch_size}),
    }


def train(name: str | None, problem: str, dtype: str, compile: Any = True) -> portnn.Sequential:
    make, X, y, loss, opt, kw = problems()[problem]
    net = make()
    if name is None:
        net.to("numpy", None, dtype)
        net.fit(X, y, loss=loss(), optimizer=opt(), compile=False, **kw)
        return net
    xp, device = load(name)
    net.to(xp, device, dtype)
    Xd = xp.asarray(np.asarray(X), device=device)
    yd = xp.asarray(np.asarray(y), device=device)
    net.fit(Xd, yd, loss=loss(), optimizer=opt(), compile=compile, **kw)
    return net


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("problem", ["seed", "mlp", "dropout-cnn"])
@pytest.mark.parametrize("name", COMPILING)
def test_compiled_training_matches_numpy(name: str, problem: str, dtype: str) -> None:
    if name == "jax" and dtype == "float64" and os.environ.get("JAX_ENABLE_X64") == "0":
        pytest.skip("float64 on JAX needs JAX_ENABLE_X64=1 (this run keeps JAX's defaults)")
    if name == "torch" and dtype == "float32" and problem != "seed":
        pytest.skip("torch.compile compiles for seconds per graph on the CPU: float32 on the seed net, float64 on "
                    "every problem (ci/matrix's torch+compile rows are float64 too: backends/torch.toml ci_dtypes)")
    ref = train(None, problem, dtype)
    got = train(name, problem, dtype)
    assert got.compile_stats["method"] == backends.get(name).compile["method"]
    tol = backends.get(name).tol(dtype, "seed" if problem == "seed" else "")
    for key, value in ref.state_dict().items():
        diff = np.max(np.abs(got.state_dict()[key] - value) / np.maximum(1.0, np.abs(value)))
        assert diff <= tol, f"{key}: {diff:.2e} > {tol:.0e}"
    np.testing.assert_allclose(got.history["loss"], ref.history["loss"], rtol=max(tol, 1e-13) * 10, atol=0)


@pytest.fixture
def jax_backend() -> tuple[Any, Any]:
    if not backends.get("jax").installed():
        pytest.skip("jax is not installed")
    return load("jax")


def test_at_most_two_traces_per_fit_and_none_for_a_second(jax_backend) -> None:
    xp, device = jax_backend
    mlp = recipes.get("mlp")  # 64 rows in batches of 24: two full batches (one scan) and a short one
    X, y = (xp.asarray(a, device=device) for a in mlp.data())
    net = mlp.model(1).to(xp, device)
    net.fit(X, y, loss=mlp.loss(), optimizer=mlp.optimizer(0.1), epochs=3, batch_size=24)
    assert net.compile_stats["traces"] == 2
    assert net.compile_stats["compile_seconds"] > 0
    net.fit(X, y, epochs=2, batch_size=24)
    assert net.compile_stats["traces"] == 0
    net.load_state_dict(mlp.model(2).state_dict())
    net.fit(X, y, epochs=1, batch_size=24)
    assert net.compile_stats["traces"] == 0
    full = mlp.model(1).to(xp, device)
    full.fit(X, y, loss=mlp.loss(), optimizer=mlp.optimizer(0.1), epochs=50)  # full batch: one compiled loop
    assert full.compile_stats["traces"] == 1
    assert len(full.history["loss"]) == 50


def failure_cases() -> list:
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((32, 3)) * 3, rng.standard_normal((32, 1)) * 3

    def relu() -> portnn.Sequential:
        return portnn.Sequential(portnn.Dense(3, 16), portnn.ReLU(), portnn.Dense(16, 1), seed=0)

    def hidden() -> portnn.Sequential:  # a dead ReLU hides an -inf weight behind a finite loss
        net = portnn.Sequential(portnn.Dense(1, 1, bias=False), portnn.ReLU(), portnn.Dense(1, 1, bias=False))
        net.load_state_dict({"0.weight": np.array([[1e-200]]), "2.weight": np.array([[1e200]])})
        return net

    return [
        pytest.param(relu, X, Y, lambda: {"loss": portnn.MSE(), "optimizer": portnn.SGD(5.0), "epochs": 50},
                     id="full-batch-divergence"),
        pytest.param(relu, X, Y, lambda: {"loss": portnn.MSE(), "optimizer": portnn.SGD(3.0), "epochs": 30,
                                          "batch_size": 8}, id="mini-batch-divergence"),
        pytest.param(relu, X, Y, lambda: {"loss": portnn.MSE(), "optimizer": portnn.SGD(1e308), "epochs": 1},
                     id="last-update-overflows"),
        pytest.param(hidden, np.array([[1.0]]), np.array([[0.0]]),
                     lambda: {"loss": portnn.MSE(), "optimizer": portnn.SGD(1e200), "epochs": 3}, id="hidden-inf"),
        pytest.param(relu, X, Y, lambda: {"loss": portnn.MSE(), "optimizer": portnn.Adam(1e100), "epochs": 3,
                                          "batch_size": 8, "shuffle": False}, id="adam-overflow"),
        pytest.param(relu, X, Y, lambda: {"loss": portnn.MSE(), "optimizer": portnn.SGD(3.0), "epochs": 30,
                                          "batch_size": 8, "progress": lambda _e, _loss: None}, id="with-progress"),
    ]


@pytest.mark.parametrize(("make", "X", "y", "kwargs"), failure_cases())
def test_failures_end_as_in_eager_training(jax_backend, make, X, y, kwargs) -> None:
    xp, device = jax_backend
    results = []
    for compile in (False, True):
        net = make().to(xp, device)
        with pytest.raises(FloatingPointError) as info:
            net.fit(xp.asarray(X, device=device), xp.asarray(y, device=device), compile=compile, **kwargs())
        results.append((str(info.value), net))
    (eager_msg, eager), (compiled_msg, compiled) = results
    assert compiled_msg == eager_msg
    assert compiled.epoch == eager.epoch
    assert compiled.history.keys() == eager.history.keys()
    for key, values in eager.history.items():
        np.testing.assert_allclose(compiled.history[key], values, rtol=1e-9, err_msg=key)
    assert list(compiled.state_dict()) == list(eager.state_dict())  # the layers' own key order
    for arrays in (readable(compiled.training), readable(eager.training)):
        assert all(np.isfinite(portnn.to_numpy(a)).all() for a in arrays.values())
    for key, value in eager.state_dict().items():
        np.testing.assert_allclose(compiled.state_dict()[key], value, rtol=1e-9, atol=0)
    assert readable(compiled.training).keys() == readable(eager.training).keys()


class Recorder(portnn.Callback):
    def __init__(self) -> None:
        self.steps: list[tuple[int, int, int, float]] = []
        self.epochs: list[tuple[int, dict]] = []

    def on_step(self, event: portnn.StepEvent) -> None:
        self.steps.append((event.epoch, event.batch, event.step, event.loss))

    def on_epoch(self, event: portnn.EpochEvent) -> None:
        self.epochs.append((event.epoch, dict(event.record)))


def test_callbacks_and_validation_report_as_in_eager_training(jax_backend) -> None:
    xp, device = jax_backend
    spiral = recipes.get("spiral")
    Xh, yh = spiral.data()
    X, y = xp.asarray(Xh[:64], device=device), xp.asarray(yh[:64], device=device)
    seen = []
    for compile in (False, True):
        rec = Recorder()
        net = spiral.model(1).to(xp, device)
        history = net.fit(X, y, loss=spiral.loss(), optimizer=spiral.optimizer(0.01), epochs=3, batch_size=24,
                          validation_data=(X, y), callbacks=[rec], compile=compile)
        seen.append((rec, history, net))
    (re, he, _ne), (rc, hc, nc) = seen
    assert [s[:3] for s in rc.steps] == [s[:3] for s in re.steps]
    np.testing.assert_allclose([s[3] for s in rc.steps], [s[3] for s in re.steps], rtol=1e-12)
    assert [e for e, _ in rc.epochs] == [1, 2, 3]
    assert set(hc.metrics) == set(he.metrics) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key in he.metrics:
        np.testing.assert_allclose(hc.metrics[key], he.metrics[key], rtol=1e-12)
    assert nc.compile_stats["traces"] <= 2


def test_compiled_predict_and_evaluate(jax_backend) -> None:
    xp, device = jax_backend
    digits = recipes.get("digits-mlp")
    Xh, yh = digits.data()
    net = digits.model(1).to(xp, device)
    X = xp.asarray(Xh[:200], device=device)
    eager = portnn.to_numpy(net.predict(X, compile=False))
    np.testing.assert_allclose(portnn.to_numpy(net.predict(X)), eager, rtol=1e-12, atol=1e-15)
    net.predict(X)  # the same compiled forward: no new one is built
    kinds = [k for k in net._compiled if k[0] == "inference"]
    assert len(kinds) == 2  # one eager, one compiled
    y = xp.asarray(yh[:200], device=device)
    e = net.evaluate(X, y, loss=portnn.SoftmaxCrossEntropy(), compile=False)
    c = net.evaluate(X, y, loss=portnn.SoftmaxCrossEntropy())
    assert c["accuracy"] == e["accuracy"]
    assert c["loss"] == pytest.approx(e["loss"], rel=1e-12)


def test_compile_arguments_are_checked() -> None:
    net = portnn.Sequential(portnn.Dense(2, 1))
    X, y = np.ones((4, 2)), np.ones((4, 1))
    with pytest.raises(ValueError, match=r"compile=True, but backend 'numpy' does not compile"):
        net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1), compile=True)
    with pytest.raises(ValueError, match=r"compile must be one of True, False, 'auto', got 'yes'"):
        net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1), compile="yes")
    assert net.epoch == 0


def test_data_parallel_training_is_compiled_in_two_parts_around_the_allreduce(jax_backend) -> None:
    """With a communicator the step compiles as two functions around the collective (gradients, then commit), and
    a group of one trains as one process does."""
    xp, device = jax_backend
    mlp = recipes.get("mlp")
    X, y = (xp.asarray(a, device=device) for a in mlp.data())
    kw: dict[str, Any] = {"loss": mlp.loss(), "optimizer": mlp.optimizer(0.1), "epochs": 3, "batch_size": 24,
                          "compile": True}
    alone = mlp.model(1).to(xp, device)
    alone.fit(X, y, **kw)
    net = mlp.model(1).to(xp, device)
    net.fit(X, y, communicator=portnn.distributed.SingleProcess(), **kw)
    assert net.epoch == 3
    assert net.compile_stats["method"] == "jax.jit"
    assert net.compile_stats["traces"] == 4  # gradients and commit, for the full batches and the short last one
    for key, value in alone.state_dict().items():
        np.testing.assert_allclose(net.state_dict()[key], value, rtol=0, atol=1e-12)


def test_a_step_that_cannot_be_traced_trains_eagerly_under_auto(jax_backend) -> None:
    xp, device = jax_backend

    class HostRead(portnn.Identity):  # reads its input on the host: fine eagerly, impossible under jax.jit
        def forward(self, params, x, ctx):
            portnn.to_numpy(x)
            return x, None

    def make() -> portnn.Sequential:
        return portnn.Sequential(portnn.Dense(2, 3), HostRead(), portnn.Dense(3, 1), seed=0).to(xp, device)

    X, y = xp.ones((8, 2), device=device), xp.zeros((8, 1), device=device)
    net = make()
    with pytest.warns(UserWarning, match=r"jax.jit cannot compile this model's step .*training eagerly"):
        auto = net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1), epochs=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eager = make().fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1), epochs=3, compile=False)
    assert list(auto) == list(eager)
    with pytest.raises(Exception, match=r"Tracer|tracer|concrete"):
        make().fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1), epochs=1, compile=True)


def test_the_seed_net_runs_its_epochs_as_one_compiled_loop(jax_backend) -> None:
    xp, device = jax_backend
    seed = recipes.get("seed")
    X, y = (xp.asarray(a, device=device) for a in seed.data())
    net = seed.model(1).to(xp, device)
    history = net.fit(X, y, loss=seed.loss(), optimizer=seed.optimizer(1.0), epochs=3000)
    assert net.compile_stats["traces"] == 1
    ref = seed.model(1)
    ref_history = ref.fit(*seed.data(), loss=seed.loss(), optimizer=seed.optimizer(1.0), epochs=3000)
    np.testing.assert_allclose(list(history), list(ref_history), rtol=1e-11)
    for key, value in ref.state_dict().items():
        np.testing.assert_allclose(net.state_dict()[key], value, rtol=1e-11)


def test_full_batch_epochs_in_one_loop_report_every_metric(jax_backend) -> None:
    """The one compiled loop returns each epoch's loss and accuracy, equal to eager training's history."""
    xp, device = jax_backend
    spiral = recipes.get("spiral")
    X, y = spiral.data()
    histories = []
    for compile in (False, True):
        net = spiral.model(1).to(xp, device)
        net.fit(xp.asarray(X, device=device), xp.asarray(y, device=device), loss=spiral.loss(),
                optimizer=spiral.optimizer(0.01), epochs=40, batch_size=len(X), compile=compile)
        histories.append(net.history)
    eager, compiled = histories
    assert set(eager) == {"loss", "accuracy"} == set(compiled)
    assert compiled["accuracy"] == eager["accuracy"]
    np.testing.assert_allclose(compiled["loss"], eager["loss"], rtol=1e-11)


class EveryK(portnn.Callback):
    """Records the epochs it is called at and the weights it sees; optionally writes a value into them."""

    def __init__(self, every: int, poison_at: int | None = None) -> None:
        self.every, self.poison_at = every, poison_at
        self.seen: list[tuple[int, float, dict]] = []

    def on_epoch(self, event: portnn.EpochEvent) -> None:
        self.seen.append((event.epoch, event.loss, event.model.state_dict()))
        if event.epoch == self.poison_at:
            model = event.model
            w = model.params[0]["weight"]
            model.params = [{**model.params[0], "weight": w * float("inf")}, *model.params[1:]]


def test_a_callback_every_k_epochs_sees_what_eager_training_shows(jax_backend) -> None:
    """``every=K``: on_epoch after epochs K, 2K, ... and the last, with the model of that epoch; the compiled
    full-batch run trains each K epochs as one loop (its length an argument: one trace for K and the remainder)
    and records every epoch in the history, as eager training does."""
    xp, device = jax_backend
    seed = recipes.get("seed")
    X, y = (xp.asarray(a, device=device) for a in seed.data())
    runs = []
    for compile in (False, True):
        cb = EveryK(40)
        net = seed.model(1).to(xp, device)
        history = net.fit(X, y, loss=seed.loss(), optimizer=seed.optimizer(1.0), epochs=100, callbacks=[cb],
                          compile=compile)
        runs.append((cb, history, net))
    (eager_cb, eager_h, _), (cb, history, net) = runs
    assert [e for e, _, _ in cb.seen] == [e for e, _, _ in eager_cb.seen] == [40, 80, 100]
    assert net.compile_stats["traces"] == 1
    assert len(history) == 100
    np.testing.assert_allclose(list(history), list(eager_h), rtol=1e-12)
    for (_, loss, weights), (_, eager_loss, eager_weights) in zip(cb.seen, eager_cb.seen, strict=True):
        assert loss == pytest.approx(eager_loss, rel=1e-12)
        for key, value in eager_weights.items():
            np.testing.assert_allclose(weights[key], value, rtol=1e-12)


@pytest.mark.parametrize("batch_size", [None, 2], ids=["full-batch", "mini-batch"])
def test_a_callback_that_writes_non_finite_weights_is_undone_as_in_eager_training(jax_backend, batch_size) -> None:
    xp, device = jax_backend
    seed = recipes.get("seed")
    X, y = (xp.asarray(a, device=device) for a in seed.data())
    results = []
    for compile in (False, True):
        net = seed.model(1).to(xp, device)
        with pytest.raises(FloatingPointError) as info:
            net.fit(X, y, loss=seed.loss(), optimizer=seed.optimizer(1.0), epochs=30, batch_size=batch_size,
                    callbacks=[EveryK(10, poison_at=20)], compile=compile)
        results.append((str(info.value), net))
    (eager_msg, eager), (msg, net) = results
    assert msg == eager_msg
    assert "a callback at epoch 20 set non-finite values in 0.weight" in msg
    assert net.epoch == eager.epoch == 20
    for key, value in eager.state_dict().items():
        np.testing.assert_allclose(net.state_dict()[key], value, rtol=1e-12)
        assert np.isfinite(net.state_dict()[key]).all()
