"""fit/evaluate: history and metrics, validation data, resuming, dtype guard rails on every backend, non-finite
losses with the optimizer state rolled back."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import pytest

import portnn
from portnn import datasets
from portnn.array.tree import leaves
from portnn.train.callbacks import Progress

X_SPIRAL, Y_SPIRAL = datasets.spiral(seed=0, n_per_class=30)
X_VAL, Y_VAL = datasets.spiral(seed=1, n_per_class=10)


def spiral_net(seed: int = 0) -> portnn.Sequential:
    return portnn.Sequential(portnn.Dense(2, 16, init="he_uniform"), portnn.ReLU(), portnn.Dense(16, 3), seed=seed)


def test_fit_returns_a_list_of_losses_with_metrics_and_validation() -> None:
    net = spiral_net()
    history = net.fit(X_SPIRAL, Y_SPIRAL, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.Adam(0.02), epochs=4,
                      batch_size=32, validation_data=(X_VAL, Y_VAL))
    assert isinstance(history, list)
    assert len(history) == 4
    assert all(type(v) is float for v in history)
    assert history == history.metrics["loss"]
    assert set(history.metrics) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in history.metrics.values())
    assert history.metrics["val_accuracy"][-1] > history.metrics["val_accuracy"][0]
    # the last validation entry is what evaluate() says about the final weights
    assert net.evaluate(X_VAL, Y_VAL) == {"loss": history.metrics["val_loss"][-1],
                                          "accuracy": history.metrics["val_accuracy"][-1]}
    net.fit(X_SPIRAL, Y_SPIRAL, epochs=2, batch_size=32)  # no validation this time
    assert net.history["loss"] == [*history, *net.history["loss"][4:]]
    assert len(net.history["loss"]) == 6
    assert len(net.history["val_loss"]) == 4


def test_evaluate_accuracy_is_the_fraction_of_argmax_hits(numpy64) -> None:
    net = spiral_net()
    net.fit(X_SPIRAL, Y_SPIRAL, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.Adam(0.02), epochs=3)
    expected = np.mean(np.argmax(portnn.to_numpy(net.predict(X_VAL)), axis=1) == Y_VAL)
    result = net.evaluate(X_VAL, Y_VAL)
    assert result["accuracy"] == expected
    batched = net.evaluate(X_VAL, Y_VAL, batch_size=7)
    assert batched["accuracy"] == expected
    assert batched["loss"] == pytest.approx(result["loss"], rel=1e-14)
    one_hot = net.evaluate(X_VAL, np.eye(3)[Y_VAL])
    assert one_hot["accuracy"] == expected
    assert one_hot["loss"] == pytest.approx(result["loss"], rel=1e-14)


def test_binary_accuracy_thresholds_logits_at_zero_and_probabilities_at_half() -> None:
    X, y = datasets.xor()
    logits = portnn.Sequential(portnn.Dense(3, 8), portnn.Tanh(), portnn.Dense(8, 1), seed=0)
    h = logits.fit(X, y, loss=portnn.BinaryCrossEntropy(), optimizer=portnn.Adam(0.05), epochs=200)
    assert set(h.metrics) == {"loss", "accuracy"}
    assert h.metrics["accuracy"][-1] == 1.0
    out = portnn.to_numpy(logits.predict(X))
    assert np.array_equal(out > 0, y > 0.5)
    probs = portnn.Sequential(portnn.Dense(3, 8), portnn.Tanh(), portnn.Dense(8, 1), portnn.Sigmoid(), seed=0)
    probs.fit(X, y, loss=portnn.MSE(), optimizer=portnn.Adam(0.05), epochs=300, metrics=["accuracy"])
    assert probs.evaluate(X, y)["accuracy"] == 1.0
    assert "accuracy" not in probs.evaluate(X, y, metrics=[])


def test_resume_equals_uninterrupted_bit_for_bit() -> None:
    whole = spiral_net()
    losses = whole.fit(X_SPIRAL, Y_SPIRAL, loss=portnn.SoftmaxCrossEntropy(),
                       optimizer=portnn.SGD(0.05, momentum=0.9, nesterov=True), epochs=6, batch_size=16, seed=7)
    parts = spiral_net()
    first = parts.fit(X_SPIRAL, Y_SPIRAL, loss=portnn.SoftmaxCrossEntropy(),
                      optimizer=portnn.SGD(0.05, momentum=0.9, nesterov=True), epochs=3, batch_size=16, seed=7)
    second = parts.fit(X_SPIRAL, Y_SPIRAL, epochs=3, batch_size=16)  # same loss, optimizer state and shuffle seed
    assert [*first, *second] == losses
    assert parts.history == whole.history
    assert parts.shuffle_seed == 7
    assert parts.epoch == 6
    for k, v in whole.state_dict().items():
        np.testing.assert_array_equal(parts.state_dict()[k], v)
    other_seed = spiral_net()
    assert other_seed.fit(X_SPIRAL, Y_SPIRAL, loss=portnn.SoftmaxCrossEntropy(),
                          optimizer=portnn.SGD(0.05, momentum=0.9, nesterov=True), epochs=6, batch_size=16,
                          seed=8) != losses  # the shuffle seed matters, so the test above could fail


def test_a_new_optimizer_starts_from_fresh_state() -> None:
    net = spiral_net()
    net.fit(X_SPIRAL, Y_SPIRAL, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.Adam(0.01), epochs=1)
    net.fit(X_SPIRAL, Y_SPIRAL, optimizer=portnn.Adam(0.01), epochs=1)
    assert int(portnn.to_numpy(net.optimizer_state["step"])) == 1


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"validation_data": X_VAL}, TypeError, "fit: validation_data must be a pair"),
    ({"validation_data": (X_VAL, Y_VAL[:5])}, ValueError, r"fit: X_val has shape \(30, 2\) and y_val has shape \(5,\)"),
    ({"metrics": ["f1"]}, ValueError, r"fit: unknown metrics \['f1'\]; known: accuracy"),
    ({"metrics": "accuracy"}, TypeError, "fit: metrics must be a list of names"),
    ({"seed": 1.5}, TypeError, r"fit: seed must be an int >= 0 or None, got 1.5"),
    ({"seed": -1}, ValueError, r"fit: seed must be an int >= 0 or None, got -1"),
])
def test_bad_fit_arguments_change_nothing(kwargs: dict, error: type, message: str) -> None:
    net = spiral_net()
    before = net.state_dict()
    with pytest.raises(error, match=message):
        net.fit(X_SPIRAL, Y_SPIRAL, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.Adam(), **kwargs)
    assert net.loss is None
    assert net.optimizer is None
    assert net.epoch == 0
    assert net.history == {}
    for k, v in before.items():
        np.testing.assert_array_equal(net.state_dict()[k], v)


def test_evaluate_needs_a_loss() -> None:
    with pytest.raises(TypeError, match="evaluate: needs a portnn loss: pass loss= or call fit first"):
        spiral_net().evaluate(X_VAL, Y_VAL)


def _float_arrays(tree: object, name: str) -> dict[str, object]:
    """Every floating-point array in a tree of lists, tuples and dicts (what a layer or loss saved for backward)."""
    found = [a for a in leaves(tree) if array_api_compat.is_array_api_obj(a)
             and array_api_compat.array_namespace(a).isdtype(a.dtype, "real floating")]
    return {f"{name}[{i}]": a for i, a in enumerate(found)}


GUARD_NETS = {
    "softmax-ce": (lambda: portnn.Sequential(
        portnn.Dense(2, 8), portnn.Tanh(), portnn.Dense(8, 8, init="he_normal"), portnn.LeakyReLU(0.1),
        portnn.Dense(8, 3, init="glorot_normal"), portnn.Identity(), seed=1),
        portnn.SoftmaxCrossEntropy, lambda: portnn.Adam(0.01, weight_decay=1e-3)),
    "softmax-layer-mse": (lambda: portnn.Sequential(
        portnn.Dense(2, 8, init="he_uniform"), portnn.Sigmoid(), portnn.Dense(8, 3), portnn.Softmax(), seed=1),
        portnn.MSE, lambda: portnn.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "bce": (lambda: portnn.Sequential(portnn.Dense(2, 8), portnn.ReLU(), portnn.Dense(8, 1), seed=1),
            portnn.BinaryCrossEntropy, lambda: portnn.SGD(0.1)),
}



def test_weights_changed_by_the_progress_callback_are_the_ones_trained_on() -> None:
    """fit carries the optimizer's output from step to step instead of re-reading the layers; a progress callback
    that edits the model between epochs must still be seen (as if fit had been called twice)."""
    def flat(net: portnn.Sequential) -> dict[str, np.ndarray]:
        return {k: np.zeros_like(v) + 0.01 for k, v in net.state_dict().items()}

    kw: dict[str, Any] = {"loss": portnn.SoftmaxCrossEntropy(), "epochs": 1, "batch_size": 32}
    ref = spiral_net()
    ref.fit(X_SPIRAL, Y_SPIRAL, optimizer=portnn.SGD(0.1), **kw)
    ref.load_state_dict(flat(ref))
    ref.fit(X_SPIRAL, Y_SPIRAL, **kw)

    net = spiral_net()
    edit = lambda epoch, _loss: net.load_state_dict(flat(net)) if epoch == 1 else None  # noqa: E731
    net.fit(X_SPIRAL, Y_SPIRAL, optimizer=portnn.SGD(0.1), progress=edit, **{**kw, "epochs": 2})
    for key, value in ref.state_dict().items():
        np.testing.assert_array_equal(net.state_dict()[key], value)

@pytest.mark.parametrize("name", GUARD_NETS)
def test_every_array_keeps_the_model_dtype_after_every_step(case, name: str) -> None:
    """NumPy 2 promotes float32 * float64-scalar to float64; no parameter, gradient, optimizer slot, activation or
    loss intermediate may drift from the model's dtype, on any backend: every array the pure step makes is checked,
    step after step, and fit then trains to the same weights."""
    make_net, make_loss, make_opt = GUARD_NETS[name]
    net = make_net().to(case.xp, case.device, case.dtype_name)
    loss, opt = make_loss(), make_opt()
    X = case.asarray(X_SPIRAL[:24])
    if name == "bce":
        y = case.asarray((Y_SPIRAL[:24] == 1).astype(np.float64)[:, None])
    elif name == "softmax-layer-mse":
        y = case.asarray(np.eye(3)[Y_SPIRAL[:24]])
    else:
        y = case.asarray(Y_SPIRAL[:24], dtype=case.ints)
    step = net.step(loss, opt)
    params, state, opt_state = net.params, net.state, opt.init_state(net.params, case.xp, case.device)
    for count in range(4):
        xb, yb = X[(count % 2) * 12:(count % 2 + 1) * 12, ...], y[(count % 2) * 12:(count % 2 + 1) * 12, ...]
        out, saved = step.forward(params, state, xb, (0, count))
        value, loss_saved = loss.forward(out, yb, step.training)
        loss_value, grads, state, out2 = step.gradients(params, state, xb, yb, (0, count))
        params, opt_state = step.apply(params, grads, opt_state)
        arrays = {**_float_arrays(params, "param"), **_float_arrays(grads, "grad"), **_float_arrays(opt_state, "opt"),
                  **_float_arrays(saved, "saved"), **_float_arrays(loss_saved, "loss saved"), "output": out2,
                  "loss": loss_value, "loss again": value}
        wrong = {k: str(a.dtype) for k, a in arrays.items() if a.dtype != case.dtype}
        assert not wrong, f"step {count + 1}: not {case.dtype_name}: {wrong}"
        off = [k for k, a in arrays.items() if array_api_compat.device(a) != case.device]
        assert not off, f"step {count + 1}: not on {case.device}: {off}"
    net.fit(X, y, loss=loss, optimizer=make_opt(), epochs=2, batch_size=12, shuffle=False, compile=False)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, portnn.to_numpy(params[int(k.split(".")[0])][k.split(".")[1]]))
    assert net.predict(X).dtype == case.dtype


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns about the overflow before portnn raises
def test_non_finite_loss_rolls_back_weights_and_optimizer_state(case64) -> None:
    """Adam at lr 1e100 on a linear net: step 1 is finite, its update makes the outputs ~1e200, so step 2's squared
    error overflows. The model keeps the weights and Adam state that step 2 started from before that update."""
    net = portnn.Sequential(portnn.Dense(3, 4), portnn.Identity(), portnn.Dense(4, 1), seed=0)
    net.to(case64.xp, case64.device)
    start = net.state_dict()
    X, y = datasets.regression(seed=0, n=8, features=3, outputs=1)
    with pytest.raises(FloatingPointError, match=r"fit: loss is (inf|nan) at epoch 1, batch 2; the model is rolled"):
        net.fit(case64.asarray(X), case64.asarray(y), loss=portnn.MSE(), optimizer=portnn.Adam(1e100), epochs=3,
                batch_size=4, shuffle=False)
    for k, v in start.items():
        np.testing.assert_array_equal(net.state_dict()[k], v)
    state = net.optimizer_state
    assert int(portnn.to_numpy(state["step"])) == 0
    assert not any(np.any(portnn.to_numpy(a)) for a in leaves(state["m"], state["v"]))
    assert net.epoch == 0
    assert net.history == {}


@pytest.mark.parametrize(("every", "error"), [(0, ValueError), (-3, ValueError), (1.5, TypeError), (True, TypeError)])
def test_callback_every_must_be_a_positive_int(every, error) -> None:
    class Bad(portnn.Callback):
        pass

    bad = Bad()
    bad.every = every
    net = portnn.Sequential(portnn.Dense(3, 1), seed=0)
    with pytest.raises(error, match=r"fit: Bad\.every must"):
        net.fit(np.ones((4, 3)), np.zeros((4, 1)), loss=portnn.MSE(), optimizer=portnn.SGD(0.1), epochs=2,
                callbacks=[bad])
    assert net.epoch == 0


def test_progress_every_k_epochs_and_the_last() -> None:
    calls: list[int] = []
    net = portnn.Sequential(portnn.Dense(3, 1), seed=0)
    history = net.fit(np.ones((4, 3)), np.zeros((4, 1)), loss=portnn.MSE(), optimizer=portnn.SGD(0.1), epochs=10,
                      callbacks=[Progress(lambda e, _loss: calls.append(e), every=4)])
    assert calls == [4, 8, 10]
    assert len(history) == 10
