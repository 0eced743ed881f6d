"""A fit never hands back a broken model: non-finite updates (also the last one, also hidden behind a finite loss)
raise FloatingPointError with the model rolled back; bad data and arguments fail before any work, naming them."""

from __future__ import annotations

import re

import numpy as np
import pytest

import portnn
from portnn.array.tree import leaves

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns about overflow before portnn raises


def all_finite(net: portnn.Sequential) -> bool:
    arrays = [*net.state_dict().values()]
    arrays += [portnn.to_numpy(a) for a in leaves(net.optimizer_state)]
    return all(np.all(np.isfinite(a)) for a in arrays)


def regression_data(case) -> tuple:
    rng = np.random.default_rng(0)
    return case.asarray(rng.standard_normal((32, 3)) * 3), case.asarray(rng.standard_normal((32, 1)) * 3)


def relu_net(case) -> portnn.Sequential:
    net = portnn.Sequential(portnn.Dense(3, 16), portnn.ReLU(), portnn.Dense(16, 1), seed=0)
    return net.to(case.xp, case.device, case.dtype_name)


# ---- item 1: the last update is checked too ------------------------------------------------------------------
def test_a_last_update_that_overflows_raises_and_rolls_back(case) -> None:
    """The issue's reproduction: SGD(1e308) for one epoch used to return 25 non-finite weights."""
    X, y = regression_data(case)
    net = relu_net(case)
    before = net.state_dict()
    with pytest.raises(FloatingPointError, match=r"the update at epoch 1, batch 1 made \d+ .*non-finite"):
        net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(1e308), epochs=1)
    assert all_finite(net)
    for key, value in before.items():  # rolled back to the weights before the only update
        np.testing.assert_array_equal(net.state_dict()[key], value)
    assert net.epoch == 0
    assert net.history.get("loss", []) == []


def test_a_diverging_fit_is_stopped_at_its_first_non_finite_update(case) -> None:
    X, y = regression_data(case)
    net = relu_net(case)
    with pytest.raises(FloatingPointError, match=r"fit: (loss is (inf|nan)|the update) at epoch \d+, batch \d+"):
        net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(5.0), epochs=50)
    assert all_finite(net)
    assert len(net.history["loss"]) == net.epoch
    assert all(np.isfinite(net.history["loss"]))


@pytest.mark.parametrize("with_progress", [False, True])
def test_hidden_non_finite_weights_behind_a_finite_loss_are_found(case64, with_progress: bool) -> None:
    """A dead ReLU hides an -inf weight: x @ W = -inf, relu gives 0, the loss is finite (0) from then on and the
    gradient is 0, so without a check the fit trains on to the end and returns the -inf weight."""
    net = portnn.Sequential(portnn.Dense(1, 1, bias=False), portnn.ReLU(), portnn.Dense(1, 1, bias=False), seed=0)
    start = {"0.weight": np.array([[1e-200]]), "2.weight": np.array([[1e200]])}  # dW0 = 2e200, dW2 = 2e-200
    net.load_state_dict(start)
    net.to(case64.xp, case64.device)
    seen: list[int] = []
    with pytest.raises(FloatingPointError, match=r"the update at epoch 1, batch 1 made 1 .* non-finite \(0.weight\) "
                                                 r"although the loss was 1"):
        net.fit(case64.asarray([[1.0]]), case64.asarray([[0.0]]), loss=portnn.MSE(), optimizer=portnn.SGD(1e200),
                epochs=3, progress=(lambda e, _: seen.append(e)) if with_progress else None)
    assert all_finite(net)
    assert seen == []
    assert net.epoch == 0
    assert net.history.get("loss", []) == []
    for key, value in start.items():
        np.testing.assert_array_equal(net.state_dict()[key], value)


def test_adam_state_that_overflows_is_never_returned() -> None:
    """float32: |g| > 1.8e19 makes g*g inf in Adam's v while the weights and the loss stay finite."""
    net = portnn.Sequential(portnn.Dense(1, 1, bias=False), seed=0, dtype="float32")
    X, y = np.array([[1e15]], dtype=np.float32), np.array([[0.0]], dtype=np.float32)
    with pytest.raises(FloatingPointError, match=r"non-finite \(optim/v/0.weight\)"):
        net.fit(X, y, loss=portnn.SSE(), optimizer=portnn.Adam(0.1), epochs=3)
    assert all_finite(net)
    assert int(portnn.to_numpy(net.optimizer_state["step"])) == 0


def test_a_replay_gives_what_a_per_step_check_gives(numpy64) -> None:
    """Mini-batches over several epochs: the replay stops at the same epoch and batch, with the same weights and
    history, as the same fit interrupted by a callback check at every epoch."""
    X, y = regression_data(numpy64)
    results = []
    for progress in (None, lambda _e, _loss: None):
        net = relu_net(numpy64)
        net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.01), epochs=2, batch_size=8)
        with pytest.raises(FloatingPointError) as info:
            net.fit(X, y, optimizer=portnn.SGD(3.0), epochs=30, batch_size=8, progress=progress)
        results.append((str(info.value), net.state_dict(), dict(net.history), net.epoch))
    assert results[0][0] == results[1][0]
    assert results[0][2:] == results[1][2:]
    for key, value in results[0][1].items():
        np.testing.assert_array_equal(value, results[1][1][key])


def test_callbacks_only_ever_see_finite_models(numpy64) -> None:
    X, y = regression_data(numpy64)
    net = relu_net(numpy64)
    seen: list[bool] = []
    with pytest.raises(FloatingPointError):
        net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(5.0), epochs=50, validation_data=(X, y),
                progress=lambda _e, _loss: seen.append(all_finite(net)))
    assert seen
    assert all(seen)


def test_a_progress_callback_that_breaks_the_weights_is_refused(numpy64) -> None:
    X, y = regression_data(numpy64)
    net = relu_net(numpy64)

    def vandal(epoch: int, loss: float) -> None:
        net.load_state_dict({**net.state_dict()}) if epoch == 1 else net.params[0].update(
            weight=net.params[0]["weight"] * np.inf)

    with pytest.raises(FloatingPointError, match=r"a callback at epoch 2 set non-finite values in 0.weight"):
        net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.01), epochs=4, progress=vandal)
    assert all_finite(net)
    assert net.epoch == 2


def test_a_model_with_non_finite_weights_does_not_start_training(numpy64) -> None:
    X, y = regression_data(numpy64)
    net = relu_net(numpy64)
    net.params[2]["bias"] = net.params[2]["bias"] * np.nan
    with pytest.raises(ValueError, match=r"non-finite values before training in 2.bias"):
        net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.01))


def test_the_cli_does_not_save_a_broken_model(tmp_path, capsys) -> None:
    from portnn import cli

    path = tmp_path / "m.npz"
    assert cli.main(["train", "--example", "mlp", "--epochs", "1", "--lr", "1e308", "--save", str(path),
                     "--quiet"]) == 2
    # nan or inf: which one depends on the BLAS kernel (OPENBLAS_CORETYPE=Haswell gives inf at batch 2)
    assert re.search(r"loss is (nan|inf) at epoch 1", capsys.readouterr().err)
    assert not path.exists()


# ---- item 6: data and arguments -------------------------------------------------------------------------------
def bad_data_cases() -> list:
    ok_x, ok_y = np.ones((4, 3)), np.ones((4, 1))
    nan_x = ok_x.copy()
    nan_x[2, 1] = np.nan
    inf_y = ok_y.copy()
    inf_y[3, 0] = np.inf
    return [
        (np.ones((0, 3)), np.ones((0, 1)), ValueError, r"fit: X has shape \(0, 3\): no rows"),
        (ok_x.astype(complex), ok_y, TypeError, r"fit: X has dtype complex128; portnn computes on real numbers"),
        (ok_x, ok_y.astype(complex), TypeError, r"fit: y has dtype complex128"),
        (np.array([["a", "b", "c"]] * 4), ok_y, TypeError, r"fit: X has dtype <U1"),
        (np.array([["2020-01-01"] * 3] * 4, dtype="datetime64[D]"), ok_y, TypeError, r"fit: X has dtype datetime64"),
        ([["1", "2", "3"]] * 4, ok_y, TypeError, r"X holds <U1 values"),
        (nan_x, ok_y, ValueError, r"fit: X has non-finite values \(nan or inf\) in 1 of 4 rows, the first in row 2"),
        (ok_x, inf_y, ValueError, r"fit: y has non-finite values .* in 1 of 4 rows, the first in row 3"),
    ]


@pytest.mark.parametrize(("X", "y", "error", "message"), bad_data_cases())
def test_bad_data_fails_before_any_work(X, y, error, message) -> None:
    net = portnn.Sequential(portnn.Dense(3, 1), seed=0)
    before = net.state_dict()
    with pytest.raises(error, match=message):
        net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1))
    assert net.placement is None
    assert net.loss is None
    assert net.epoch == 0
    for key, value in before.items():
        np.testing.assert_array_equal(net.state_dict()[key], value)


def test_bad_data_on_every_backend(case) -> None:
    net = portnn.Sequential(portnn.Dense(3, 2), seed=0).to(case.xp, case.device, case.dtype_name)
    X = np.ones((5, 3))
    X[4, 0] = np.nan
    with pytest.raises(ValueError, match=r"fit: X has non-finite values .* the first in row 4"):
        net.fit(case.asarray(X), case.asarray(np.ones((5, 2))), loss=portnn.MSE(), optimizer=portnn.SGD(0.1))
    with pytest.raises(ValueError, match=r"predict: X has non-finite values .* the first in row 4"):
        net.predict(case.asarray(X))
    empty = case.asarray(np.ones((0, 3)))
    with pytest.raises(ValueError, match=r"evaluate: X has shape \(0, 3\): no rows"):
        net.evaluate(empty, case.asarray(np.ones((0, 2))), loss=portnn.MSE())
    labels = case.asarray(np.array([0.0, 1.0, 1.0, 0.0, 1.0]))  # float labels
    with pytest.raises(TypeError, match=r"class labels y \(shape \(5,\)\) must have an integer dtype, got float"):
        net.fit(case.asarray(np.ones((5, 3))), labels, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1))
    one_logit = portnn.Sequential(portnn.Dense(3, 1), seed=0).to(case.xp, case.device, case.dtype_name)
    with pytest.raises(ValueError, match=r"outputs 1 logit per sample .* use BinaryCrossEntropy"):
        one_logit.fit(case.asarray(np.ones((5, 3))), case.asarray(np.zeros(5), dtype=case.ints),
                      loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1))
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy: targets y must lie in \[0, 1\], got values from -1 "):
        one_logit.fit(case.asarray(np.ones((3, 3))), case.asarray(np.array([[-1.0], [0.5], [2.0]])),
                      loss=portnn.BinaryCrossEntropy(), optimizer=portnn.SGD(0.1))


def test_bool_labels_and_out_of_range_one_hot_targets() -> None:
    net = portnn.Sequential(portnn.Dense(3, 2), seed=0)
    X = np.ones((4, 3))
    with pytest.raises(TypeError, match=r"must have an integer dtype, got bool"):
        net.fit(X, np.array([True, False, True, False]), loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1))
    with pytest.raises(ValueError, match=r"one-hot targets y must lie in \[0, 1\], got values from -1 to 1"):
        net.fit(X, np.array([[1.0, 0.0]] * 3 + [[-1.0, 1.0]]), loss=portnn.SoftmaxCrossEntropy(),
                optimizer=portnn.SGD(0.1))


def test_predict_never_returns_non_finite_outputs() -> None:
    net = portnn.Sequential(portnn.Dense(2, 1), seed=0)
    net.load_state_dict({"0.weight": np.array([[1e300], [1e300]]), "0.bias": np.zeros(1)})
    with pytest.raises(FloatingPointError, match=r"predict: the output is not finite .* for 1 of 2 rows, the first "
                                                 r"row 1"):
        net.predict(np.array([[1.0, 0.0], [1e10, 1e10]]))
    assert np.isfinite(portnn.to_numpy(net.predict(np.array([[1.0, 0.0]])))).all()


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: portnn.Sequential(portnn.Dense(3, 1), seed=-1), ValueError, r"Sequential: seed must be an int >= 0, "
                                                                         r"got -1"),
    (lambda: portnn.Sequential(portnn.Dense(3, 1), seed=1.5), TypeError,  # type: ignore[arg-type]  # the point
     r"Sequential: seed must be an int >= 0, got 1.5"),
])
def test_bad_model_seeds(make, error, message) -> None:
    with pytest.raises(error, match=message):
        make()


def test_a_numpy_integer_seed_is_accepted() -> None:
    assert portnn.Sequential(portnn.Dense(3, 1), seed=np.int64(3)).seed == 3  # type: ignore[arg-type]  # the point


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"progress": "bar"}, TypeError, r"fit: progress must be a function f\(epoch, loss\) or None, got 'bar'"),
    ({"shuffle": "yes"}, TypeError, r"fit: shuffle must be True or False"),
    ({"communicator": 3}, TypeError, r"fit: communicator must be a portnn.distributed communicator"),
    ({"epochs": -1}, ValueError, r"fit: epochs must be an int >= 0 or None, got -1"),
])
def test_bad_fit_arguments_fail_before_the_first_epoch(kwargs, error, message) -> None:
    net = portnn.Sequential(portnn.Dense(3, 1), seed=0)
    with pytest.raises(error, match=message):
        net.fit(np.ones((4, 3)), np.ones((4, 1)), loss=portnn.MSE(), optimizer=portnn.SGD(0.1), **kwargs)
    assert net.epoch == 0
    assert net.placement is None


# ---- item 7: optimizers ---------------------------------------------------------------------------------------
def test_hyper_parameters_are_checked_whenever_set() -> None:
    opt = portnn.SGD(0.1, momentum=0.9, nesterov=True)
    opt.lr = np.float64(0.05)
    assert type(opt.lr) is float
    with pytest.raises(ValueError, match=r"SGD: lr must be a finite number > 0, got -5"):
        opt.lr = -5
    with pytest.raises(ValueError, match=r"SGD: nesterov=True needs momentum > 0"):
        opt.momentum = 0.0
    adam = portnn.Adam()
    with pytest.raises(ValueError, match=r"Adam: betas\[1\] must be a finite number in \[0, 1\), got 1.0"):
        adam.betas = (0.9, 1.0)
    with pytest.raises(ValueError, match=r"Adam: eps must be a finite number > 0"):
        adam.eps = float("nan")
    assert opt.lr == 0.05
    assert opt.momentum == 0.9
    assert adam.betas == (0.9, 0.999)


def test_a_numpy_learning_rate_set_later_keeps_float32_training_float32() -> None:
    net = portnn.Sequential(portnn.Dense(3, 2), seed=0, dtype="float32")
    opt = portnn.Adam(0.01)
    X, y = np.ones((4, 3), dtype=np.float32), np.zeros((4, 2), dtype=np.float32)
    net.fit(X, y, loss=portnn.MSE(), optimizer=opt)
    opt.lr = np.float64(0.02)
    net.fit(X, y)
    assert all(v.dtype == np.float32 for v in net.state_dict().values())
    assert all(a.dtype == np.float32 for a in leaves(net.optimizer_state["m"], net.optimizer_state["v"]))


def test_one_optimizer_shared_by_two_models_keeps_each_models_state() -> None:
    X, y = np.random.default_rng(0).standard_normal((16, 3)), np.random.default_rng(1).standard_normal((16, 2))

    def make() -> portnn.Sequential:
        return portnn.Sequential(portnn.Dense(3, 4), portnn.Tanh(), portnn.Dense(4, 2), seed=0)

    alone, a, b = make(), make(), make()
    solo = portnn.Adam(0.01)
    alone.fit(X, y, loss=portnn.MSE(), optimizer=solo, epochs=3)
    alone.fit(X, y, optimizer=solo, epochs=3)
    shared = portnn.Adam(0.01)
    a.fit(X, y, loss=portnn.MSE(), optimizer=shared, epochs=3)
    b.fit(X * 2, y, loss=portnn.MSE(), optimizer=shared, epochs=5)
    a.fit(X, y, optimizer=shared, epochs=3)  # continues with a's Adam state, not b's
    for key, value in alone.state_dict().items():
        np.testing.assert_array_equal(a.state_dict()[key], value)
    assert int(portnn.to_numpy(a.optimizer_state["step"])) == 6
    assert int(portnn.to_numpy(b.optimizer_state["step"])) == 5
