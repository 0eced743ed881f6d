"""The training step is pure: a function of arrays only, deterministic, leaving its inputs and the model untouched;
fit is the loop around it (the same numbers), and callbacks see every step and epoch."""

from __future__ import annotations

import numpy as np
import pytest

import portnn
from portnn.array.tree import leaves


def dropout_net() -> portnn.Sequential:
    return portnn.Sequential(portnn.Dense(4, 8), portnn.ReLU(), portnn.Dropout(0.3), portnn.Dense(8, 3), seed=2)


def host(tree: object) -> list[np.ndarray]:
    return [portnn.to_numpy(a) for a in leaves(tree)]


def data(case) -> tuple:
    rng = np.random.default_rng(0)
    return case.asarray(rng.standard_normal((12, 4))), case.asarray(rng.integers(0, 3, 12), dtype=case.ints)


def test_the_step_is_pure(case) -> None:
    """Same inputs twice -> identical outputs; inputs and model unchanged after a call (Adam: the counter and the
    bias corrections are arrays in the state)."""
    net = dropout_net().to(case.xp, case.device, case.dtype_name)
    X, y = data(case)
    opt = portnn.Adam(0.01)
    step = net.step(portnn.SoftmaxCrossEntropy(), opt)
    params, state, opt_state = net.params, net.state, opt.init_state(net.params, case.xp, case.device)
    before = host([params, state, opt_state, X, y])
    model_before = net.state_dict()
    first = step(params, state, opt_state, X, y, (0, 0))
    second = step(params, state, opt_state, X, y, (0, 0))
    for a, b in zip(host(first), host(second), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(host([params, state, opt_state, X, y]), before, strict=True):
        np.testing.assert_array_equal(a, b)
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, model_before[key])
    assert net.optimizer_state == {}
    assert net.epoch == 0
    assert net.loss is None
    new_params, _, new_opt, loss, _ = first
    assert int(portnn.to_numpy(new_opt["step"])) == 1
    assert all(isinstance(v, list) or hasattr(v, "dtype") for v in new_opt.values())  # arrays only
    assert not np.array_equal(host(new_params)[0], host(params)[0])
    assert np.isfinite(float(portnn.to_numpy(loss)))


def test_the_step_key_decides_the_dropout_mask(numpy64) -> None:
    net = dropout_net().to(numpy64.xp, numpy64.device)
    X, y = data(numpy64)
    step = net.step(portnn.SoftmaxCrossEntropy(), portnn.SGD(0.1))
    a = step.gradients(net.params, net.state, X, y, (0, 0))[1]
    b = step.gradients(net.params, net.state, X, y, (0, 1))[1]
    assert not np.array_equal(host(a)[0], host(b)[0])  # another batch, another mask
    c = step.gradients(net.params, net.state, X, y, (0, 0))[1]
    for u, v in zip(host(a), host(c), strict=True):
        np.testing.assert_array_equal(u, v)


def test_fit_is_the_loop_around_the_step(case) -> None:
    """fit's weights equal the weights of the pure step called by hand on the same batches and keys."""
    X, y = data(case)
    net = dropout_net().to(case.xp, case.device, case.dtype_name)
    opt = portnn.SGD(0.1, momentum=0.9)
    step = net.step(portnn.SoftmaxCrossEntropy(), opt)
    params, state, opt_state = net.params, net.state, opt.init_state(net.params, case.xp, case.device)
    for epoch in range(2):
        for b in range(3):
            rows = slice(4 * b, 4 * b + 4)
            params, state, opt_state, _, _ = step(params, state, opt_state, X[rows, ...], y[rows, ...], (epoch, b))
    net.fit(X, y, loss=portnn.SoftmaxCrossEntropy(), optimizer=opt, epochs=2, batch_size=4, shuffle=False,
            compile=False)  # bit for bit: the same eager arithmetic (compiled runs are checked in test_compiled.py)
    for got, want in zip(host(net.params), host(params), strict=True):  # (b: the batch index above)
        np.testing.assert_array_equal(got, want)


class Recorder(portnn.Callback):
    def __init__(self) -> None:
        self.steps: list[tuple[int, int, int, float]] = []
        self.epochs: list[tuple[int, dict]] = []

    def on_step(self, event: portnn.StepEvent) -> None:
        self.steps.append((event.epoch, event.batch, event.step, event.loss))

    def on_epoch(self, event: portnn.EpochEvent) -> None:
        self.epochs.append((event.epoch, dict(event.record)))


def test_callbacks_see_every_step_and_epoch(numpy64) -> None:
    X, y = data(numpy64)
    net = dropout_net()
    rec = Recorder()
    history = net.fit(X, y, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1), epochs=2, batch_size=5,
                      shuffle=False, callbacks=[rec], validation_data=(X, y))
    assert [s[:3] for s in rec.steps] == [(1, 1, 1), (1, 2, 2), (1, 3, 3), (2, 1, 4), (2, 2, 5), (2, 3, 6)]
    assert [e for e, _ in rec.epochs] == [1, 2]
    assert [r["loss"] for _, r in rec.epochs] == list(history)
    assert set(rec.epochs[0][1]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # the epoch loss is the row-weighted mean of its batch losses (batches of 5, 5, 2)
    first = [loss for e, _, _, loss in rec.steps if e == 1]
    assert history[0] == pytest.approx((5 * first[0] + 5 * first[1] + 2 * first[2]) / 12, rel=1e-12)


def test_a_callback_that_only_watches_epochs_costs_no_per_step_reports(numpy64) -> None:
    class Epochs(portnn.Callback):
        def __init__(self) -> None:
            self.seen: list[int] = []

        def on_epoch(self, event: portnn.EpochEvent) -> None:
            self.seen.append(event.epoch)

    X, y = data(numpy64)
    cb = Epochs()
    net = dropout_net()
    net.fit(X, y, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1), epochs=3, batch_size=4, callbacks=[cb])
    assert cb.seen == [1, 2, 3]
    from portnn.train.callbacks import wants_steps
    assert not wants_steps([cb])
    assert wants_steps([Recorder()])


def test_bad_callbacks_are_refused_before_training() -> None:
    net = dropout_net()
    with pytest.raises(TypeError, match=r"fit: callbacks must be a list of portnn.Callback objects"):
        net.fit(np.ones((4, 4)), np.zeros(4, dtype=int), loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1),
                callbacks=[print])  # type: ignore[list-item]  # the wrong type is the point
    assert net.epoch == 0
    assert net.placement is None
