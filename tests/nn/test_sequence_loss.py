"""SoftmaxCrossEntropy over per-position logits (N, T, V) with labels (N, T) or one-hot targets, and ignore_index:
equal to torch's CrossEntropyLoss on every backend (loss and gradient), a batch with every position ignored gives
loss 0 and zero gradient (not nan), finite differences, the target checks, and the 2-D loss unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

import portnn
from portnn import Context, to_numpy
from portnn.array.types import Array
from portnn.testing import gradcheck_loss

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(21)
LOGITS = RNG.standard_normal((3, 5, 4)) * 3.0
LABELS = RNG.integers(0, 4, (3, 5))
SOME_IGNORED = np.where(RNG.random((3, 5)) < 0.4, -1, LABELS)
ONE_HOT = np.eye(4)[LABELS]

CASES = {  # (loss, labels or targets, torch's loss)
    "labels-3d": (portnn.SoftmaxCrossEntropy(), LABELS, torch.nn.CrossEntropyLoss()),
    "one-hot-3d": (portnn.SoftmaxCrossEntropy(), ONE_HOT, torch.nn.CrossEntropyLoss()),
    "ignore-some-3d": (portnn.SoftmaxCrossEntropy(ignore_index=-1), SOME_IGNORED,
                       torch.nn.CrossEntropyLoss(ignore_index=-1)),
    "ignore-none-3d": (portnn.SoftmaxCrossEntropy(ignore_index=-1), LABELS,
                       torch.nn.CrossEntropyLoss(ignore_index=-1)),
    "ignore-some-2d": (portnn.SoftmaxCrossEntropy(ignore_index=3), LABELS[0],
                       torch.nn.CrossEntropyLoss(ignore_index=3)),
    "ignore-inside-range-3d": (portnn.SoftmaxCrossEntropy(ignore_index=0), LABELS,
                               torch.nn.CrossEntropyLoss(ignore_index=0)),
}


def _torch(fn, logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    out = torch.tensor(logits, requires_grad=True)
    target = torch.tensor(y)
    if logits.ndim == 3:  # torch wants the classes on axis 1: (N, V, T)
        value = fn(out.permute(0, 2, 1), target.permute(0, 2, 1) if y.ndim == 3 else target)
    else:
        value = fn(out, target)
    value.backward()
    return float(value.detach()), out.grad.numpy()


def _ours(loss, logits: np.ndarray, y: np.ndarray, case) -> tuple[Array, Array]:
    ctx = Context(case.xp, case.device, case.dtype, training=True)
    labels = case.asarray(y, dtype=case.ints) if y.dtype.kind == "i" else case.asarray(y)
    value, saved = loss.forward(case.asarray(logits), labels, ctx)
    return value, loss.backward(saved, ctx)


@pytest.mark.parametrize("name", CASES)
def test_matches_torch(case, name: str) -> None:
    loss, y, fn = CASES[name]
    logits = LOGITS if y.ndim >= 2 else LOGITS[0]
    ref, ref_grad = _torch(fn, logits, y)
    value, grad = _ours(loss, logits, y, case)
    assert value.dtype == grad.dtype == case.dtype
    assert tuple(grad.shape) == logits.shape
    tol = 1e-10 if case.dtype_name == "float64" else 1e-5  # measured: <= 1.3e-15 (float64), <= 4.6e-7 (float32)
    assert abs(float(to_numpy(value)) - ref) <= tol * max(1.0, abs(ref))
    np.testing.assert_allclose(to_numpy(grad), ref_grad, rtol=0, atol=tol)


def test_every_position_ignored_gives_zero_not_nan(case) -> None:
    loss = portnn.SoftmaxCrossEntropy(ignore_index=-1)
    value, grad = _ours(loss, LOGITS, np.full((3, 5), -1), case)
    assert float(to_numpy(value)) == 0.0
    assert not np.any(to_numpy(grad))
    assert value.dtype == grad.dtype == case.dtype
    _, torch_nan = _torch(torch.nn.CrossEntropyLoss(ignore_index=-1), LOGITS, np.full((3, 5), -1))
    assert not np.any(torch_nan)  # torch's gradient is zero too (its loss is nan: 0 / 0)


@pytest.mark.parametrize("y", [LABELS, SOME_IGNORED, ONE_HOT], ids=["labels", "ignored", "one-hot"])
def test_gradcheck(case64, y) -> None:
    err = gradcheck_loss(portnn.SoftmaxCrossEntropy(ignore_index=-1), LOGITS, y, case64.xp, case64.device)
    assert err < 1e-7


def test_ignored_positions_do_not_change_the_loss(numpy64) -> None:
    """Changing the logits of an ignored position changes neither the loss nor the other gradients."""
    loss = portnn.SoftmaxCrossEntropy(ignore_index=-1)
    moved = LOGITS.copy()
    moved[SOME_IGNORED == -1] += 100.0
    a, ga = _ours(loss, LOGITS, SOME_IGNORED, numpy64)
    b, gb = _ours(loss, moved, SOME_IGNORED, numpy64)
    assert float(a) == float(b)
    np.testing.assert_array_equal(ga, gb)


def test_two_dimensional_loss_is_unchanged(numpy64) -> None:
    """(N, k) logits: the same expression as before ignore_index existed, bit for bit (the golden files pin the
    training runs), and the same config and repr."""
    logits, labels = LOGITS[0], LABELS[0]
    value, grad = _ours(portnn.SoftmaxCrossEntropy(), logits, labels, numpy64)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    target = np.eye(4)[labels]
    assert float(value) == float(-np.sum(target * logp) / 5.0)
    np.testing.assert_array_equal(grad, (np.exp(logp) - target) / 5.0)
    assert portnn.SoftmaxCrossEntropy().config() == {}
    assert repr(portnn.SoftmaxCrossEntropy()) == "SoftmaxCrossEntropy()"


def test_config_round_trip() -> None:
    loss = portnn.SoftmaxCrossEntropy(ignore_index=-1)
    assert loss.config() == {"ignore_index": -1}
    assert repr(loss) == "SoftmaxCrossEntropy(ignore_index=-1)"
    again = portnn.SoftmaxCrossEntropy(**json.loads(json.dumps(loss.config())))
    assert again.ignore_index == -1
    # a NumPy integer is accepted and stored as a Python int (the point)
    assert type(portnn.SoftmaxCrossEntropy(ignore_index=np.int64(-100)).ignore_index) is int  # type: ignore[arg-type]


# ---- checks ---------------------------------------------------------------------------------------------------
def test_shapes_are_checked() -> None:
    loss = portnn.SoftmaxCrossEntropy()
    loss.check((3, 5, 4), (3, 5))
    loss.check((3, 5, 4), (3, 5, 4))
    with pytest.raises(ValueError, match=r"y has shape \(3, 4\); with logits of shape \(3, 5, 4\) it must be class "
                                         r"labels of shape \(3, 5\) or one-hot targets of shape \(3, 5, 4\)"):
        loss.check((3, 5, 4), (3, 4))
    with pytest.raises(ValueError, match=r"labels of shape \(7,\) or one-hot targets of shape \(7, 3\)"):
        loss.check((7, 3), (7, 1))  # the 2-D message as before
    with pytest.raises(ValueError, match="outputs 1 logit per sample"):
        loss.check((3, 5, 1), (3, 5))


def test_target_values_are_checked(case64) -> None:
    xp = case64.xp

    def labels(a):
        return case64.asarray(np.array(a), dtype=xp.int64)

    plain, ignoring = portnn.SoftmaxCrossEntropy(), portnn.SoftmaxCrossEntropy(ignore_index=-1)
    ignoring.check_targets(labels([[0, -1], [3, -1]]), (2, 2, 4), xp)
    with pytest.raises(ValueError, match=r"class labels must be in \[0, 4\) for 4 logits, got labels from -1 to 3"):
        plain.check_targets(labels([[0, -1], [3, 2]]), (2, 2, 4), xp)
    with pytest.raises(ValueError, match=r"must be in \[0, 4\) \(or -1, the ignore_index\) for 4 logits, got labels "
                                         r"from 0 to 4"):
        ignoring.check_targets(labels([[0, -1], [4, 2]]), (2, 2, 4), xp)
    with pytest.raises(ValueError, match=r"got labels from -2 to 3"):
        ignoring.check_targets(labels([[0, -2], [3, -1]]), (2, 2, 4), xp)
    with pytest.raises(TypeError, match=r"class labels y \(shape \(2, 2\)\) must have an integer dtype, got float64; "
                                        r".* one-hot targets of shape \(2, 2, 4\)"):
        plain.check_targets(case64.asarray(np.zeros((2, 2))), (2, 2, 4), xp)
    with pytest.raises(ValueError, match=r"one-hot targets y must lie in \[0, 1\]"):
        plain.check_targets(case64.asarray(np.full((2, 2, 4), 2.0)), (2, 2, 4), xp)


@pytest.mark.parametrize("bad", [1.5, "x", True])
def test_bad_ignore_index_is_named(bad) -> None:
    with pytest.raises(TypeError, match="SoftmaxCrossEntropy: ignore_index must be an int or None"):
        portnn.SoftmaxCrossEntropy(ignore_index=bad)
