"""Conv2D, MaxPool2D, AvgPool2D and Flatten against torch.nn.functional (float64, every backend), plus
finite-difference checks, bad-input errors and float32 staying float32."""

from __future__ import annotations

import numpy as np
import pytest

import portnn
from portnn import Context, to_numpy

torch = pytest.importorskip("torch")
F = torch.nn.functional

# (in_channels, out_channels, height, width, kernel, stride, padding)
CONV_CASES = [
    (1, 2, 6, 6, 3, 1, 0),
    (2, 3, 7, 5, 3, 2, 1),
    (3, 2, 8, 8, (2, 3), (2, 1), (0, 2)),
    (2, 4, 5, 6, 1, 1, 0),
    (1, 3, 9, 7, 4, 3, 2),
]
POOL_CASES = [(0, 2, None), (1, 2, None), (1, 3, 2), (0, (2, 3), (1, 2))]  # (extra height, kernel, stride)


def _torch_grads(fn, arrays: list[np.ndarray], dy: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(torch.tensor(dy))
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


def _run_layer(layer: portnn.Layer, x: np.ndarray, dy: np.ndarray, case, params: dict | None = None,
               ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(y, dx, grads) on the host from one forward and backward pass of ``layer`` on ``case``'s backend."""
    placed = {k: case.asarray(v) for k, v in (params or {}).items()}
    ctx = Context(case.xp, case.device, case.dtype)
    y, saved = layer.forward(placed, case.asarray(x), ctx)
    dx, grads = layer.backward(placed, saved, case.asarray(dy), ctx)
    return to_numpy(y), to_numpy(dx), {k: to_numpy(g) for k, g in grads.items()}


@pytest.mark.parametrize("spec", CONV_CASES, ids=str)
def test_conv2d_matches_torch(case64, spec) -> None:
    cin, cout, h, w, k, s, p = spec
    rng = np.random.default_rng(1)
    layer = portnn.Conv2D(cin, cout, k, stride=s, padding=p)
    params = layer.init(rng)
    params["bias"] = rng.standard_normal(cout)
    x = rng.standard_normal((3, cin, h, w))
    out_shape = layer.output_shape(x.shape, "test")
    dy = rng.standard_normal(out_shape)
    ref, (gx, gw, gb) = _torch_grads(lambda a, b, c: F.conv2d(a, b, c, stride=s, padding=p),
                                     [x, params["weight"], params["bias"]], dy)
    y, dx, grads = _run_layer(layer, x, dy, case64, params)
    assert y.shape == ref.shape == out_shape
    assert sorted(grads) == ["bias", "weight"]
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dx, gx, rtol=0, atol=1e-10)
    np.testing.assert_allclose(grads["weight"], gw, rtol=0, atol=1e-10)
    np.testing.assert_allclose(grads["bias"], gb, rtol=0, atol=1e-10)


@pytest.mark.parametrize("spec", POOL_CASES, ids=str)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_matches_torch(case64, kind: str, spec) -> None:
    extra, k, s = spec
    rng = np.random.default_rng(2)
    # integers 0..3 make ties common: max pooling must route each gradient to the first maximum, as torch does
    x = rng.integers(0, 4, size=(2, 3, 6 + extra, 7)).astype(np.float64) if kind == "max" \
        else rng.standard_normal((2, 3, 6 + extra, 7))
    layer = (portnn.MaxPool2D if kind == "max" else portnn.AvgPool2D)(k, stride=s)
    dy = rng.standard_normal(layer.output_shape(x.shape, "test"))
    fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    ref, (gx,) = _torch_grads(lambda a: fn(a, k, stride=s), [x], dy)
    y, dx, grads = _run_layer(layer, x, dy, case64)
    assert grads == {}
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dx, gx, rtol=0, atol=1e-10)


def test_maxpool_tie_goes_to_first_in_row_major_order(numpy64) -> None:
    """A window of equal values sends the whole gradient to its top-left element."""
    x = np.ones((1, 1, 2, 4))
    x[0, 0, 1, 3] = 2.0  # second window has a unique max at its bottom-right
    _, dx, _ = _run_layer(portnn.MaxPool2D(2), x, np.array([[[[5.0, 7.0]]]]), numpy64)
    np.testing.assert_array_equal(dx, [[[[5.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 7.0]]]])


def test_flatten_round_trip(case64) -> None:
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    layer = portnn.Flatten()
    y, dx, _ = _run_layer(layer, x, x.reshape(2, 60) * 2.0, case64)
    np.testing.assert_array_equal(y, x.reshape(2, 60))
    np.testing.assert_array_equal(dx, x * 2.0)


def test_cnn_layers_keep_float32(backend_device: tuple[str, str]) -> None:
    from tests.conftest import _case

    case = _case(*backend_device, "float32")
    rng = np.random.default_rng(4)
    net = portnn.Sequential(portnn.Conv2D(1, 2, 3, padding=1), portnn.ReLU(), portnn.MaxPool2D(2),
                            portnn.AvgPool2D(2), portnn.Flatten(), portnn.Dense(8, 3), seed=0)
    X = case.asarray(rng.standard_normal((4, 1, 8, 8)))
    y = case.asarray(np.array([0, 1, 2, 1]), dtype=None)
    net.fit(X, y, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1), epochs=1)
    assert net.predict(X).dtype == case.dtype
    assert all(p.dtype == case.dtype for p in net.parameters().values())
    assert all(g.dtype == case.dtype for g in net.gradients(X, y).values())


@pytest.mark.parametrize(("layer", "shape", "match"), [
    (portnn.Conv2D(3, 4, 3), (2, 1, 8, 8),
     r"expects input of shape \(batch, 3, height, width\), got shape \(2, 1, 8, 8\)"),
    (portnn.Conv2D(1, 4, 3), (2, 64), r"got shape \(2, 64\)"),
    (portnn.Conv2D(1, 4, 5, padding=1), (2, 1, 2, 2), r"\(2, 1, 2, 2\) is too small for kernel \(5, 5\)"),
    (portnn.MaxPool2D(3), (2, 1, 2, 8), r"\(2, 1, 2, 8\) is smaller than the kernel \(3, 3\)"),
    (portnn.AvgPool2D(2), (2, 4), r"expects input of shape \(batch, channels, height, width\)"),
])
def test_bad_input_shapes_are_named(numpy64, layer, shape, match) -> None:
    net = portnn.Sequential(layer, seed=0)
    with pytest.raises(ValueError, match=match):
        net.predict(np.zeros(shape))


@pytest.mark.parametrize(("make", "match"), [
    (lambda: portnn.Conv2D(0, 4, 3), "in_channels must be an int >= 1"),
    (lambda: portnn.Conv2D(1, 4, 0), "kernel_size must be an int >= 1"),
    (lambda: portnn.Conv2D(1, 4, 3, stride=(1, 2, 3)), "stride must be an int >= 1 or a pair"),
    (lambda: portnn.Conv2D(1, 4, 3, padding=-1), "padding must be an int >= 0"),
    (lambda: portnn.MaxPool2D(2, stride=0), "MaxPool2D: stride"),
    (lambda: portnn.Dropout(1.0), r"Dropout: p must be a finite number in \[0, 1\)"),
])
def test_bad_arguments(make, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()
