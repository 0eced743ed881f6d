"""GELU, SiLU, Softplus, ELU, GlobalAvgPool1D/2D and Conv1D against torch (float64, every backend, forward and every
gradient to 1e-10), float32 staying float32, shape and argument errors, the new initialisers and
bias_init (statistics, draw order, unchanged default draws), and a small Conv1D model trained, saved and reloaded."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

import portnn
from portnn import Context, to_numpy
from portnn.io import checkpoint
from portnn.nn import init
from portnn.nn.activations import ReLU
from portnn.nn.conv import Conv2D
from portnn.nn.conv1d import Conv1D
from portnn.nn.dense import Dense
from portnn.nn.global_pool import GlobalAvgPool1D, GlobalAvgPool2D
from portnn.nn.smooth import ELU, GELU, SiLU, Softplus

torch = pytest.importorskip("torch")
F = torch.nn.functional
ATOL = 1e-10  # float64 agreement with torch (measured: ~1e-15)


def _torch_grads(fn, arrays: list[np.ndarray], dy: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """torch's output and the autograd gradient of sum(output * dy) with respect to each array (float64, host)."""
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(torch.tensor(dy, dtype=torch.float64))
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


def _run(layer: portnn.Layer, x: np.ndarray, dy: np.ndarray, case, params: dict | None = None,
         ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(y, dx, grads) on the host from one forward and backward pass of ``layer`` on ``case``'s backend."""
    placed = {k: case.asarray(v) for k, v in (params or {}).items()}
    ctx = Context(case.xp, case.device, case.dtype)
    y, saved = layer.forward(placed, case.asarray(x), ctx)
    dx, grads = layer.backward(placed, saved, case.asarray(dy), ctx)
    return to_numpy(y), to_numpy(dx), {k: to_numpy(g) for k, g in grads.items()}


# ---- element-wise activations against torch -----------------------------------------------------------------
# inputs around every regime: softplus above and at its threshold, very negative values, huge magnitudes, zero
SPECIAL = np.array([-1000.0, -60.0, -25.0, -20.0, -5.0, -1e-3, 0.0, 1e-3, 2.5, 5.0, 9.99, 10.0, 19.99, 20.0, 20.01,
                    25.0, 60.0, 1000.0])
ACTIVATIONS = {
    "gelu": (GELU, lambda t: F.gelu(t, approximate="tanh")),
    "silu": (SiLU, F.silu),
    "softplus": (Softplus, F.softplus),
    "softplus-beta2-thr5": (lambda: Softplus(beta=2.0, threshold=5.0),
                            lambda t: F.softplus(t, beta=2.0, threshold=5.0)),
    "softplus-beta0.5": (lambda: Softplus(beta=0.5), lambda t: F.softplus(t, beta=0.5)),
    "elu": (ELU, F.elu),
    "elu-alpha0.3": (lambda: ELU(alpha=0.3), lambda t: F.elu(t, alpha=0.3)),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_torch(case64, name: str) -> None:
    make, fn = ACTIVATIONS[name]
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(60) * 4.0, SPECIAL]).reshape(2, 3, 13)  # any shape, here 3-D
    dy = rng.standard_normal(x.shape)
    ref, (gx,) = _torch_grads(fn, [x], dy)
    y, dx, grads = _run(make(), x, dy, case64)
    assert grads == {}
    assert y.shape == dx.shape == x.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=ATOL)
    np.testing.assert_allclose(dx, gx, rtol=0, atol=ATOL)


def test_softplus_is_linear_above_the_threshold_and_tiny_far_below(numpy64) -> None:
    x = np.array([[-800.0, -40.0, 20.5, 700.0]])
    y, dx, _ = _run(Softplus(), x, np.ones_like(x), numpy64)
    np.testing.assert_array_equal(y[0, 2:], [20.5, 700.0])  # exactly x, as torch: no log1p(exp(700)) overflow
    np.testing.assert_array_equal(dx[0, 2:], [1.0, 1.0])
    assert y[0, 0] == 0.0
    assert y[0, 1] == pytest.approx(math.exp(-40.0), rel=1e-12)  # log1p keeps the tiny value exactly


# ---- global pooling and Conv1D against torch ----------------------------------------------------------------
@pytest.mark.parametrize(("layer", "shape", "fn"), [
    (GlobalAvgPool1D(), (3, 4, 7), lambda t: F.adaptive_avg_pool1d(t, 1).flatten(1)),
    (GlobalAvgPool1D(), (2, 1, 1), lambda t: F.adaptive_avg_pool1d(t, 1).flatten(1)),
    (GlobalAvgPool2D(), (3, 4, 5, 6), lambda t: F.adaptive_avg_pool2d(t, 1).flatten(1)),
    (GlobalAvgPool2D(), (2, 3, 1, 7), lambda t: F.adaptive_avg_pool2d(t, 1).flatten(1)),
], ids=["1d", "1d-length1", "2d", "2d-row"])
def test_global_pool_matches_torch(case64, layer, shape, fn) -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(layer.output_shape(shape, "test"))
    ref, (gx,) = _torch_grads(fn, [x], dy)
    y, dx, grads = _run(layer, x, dy, case64)
    assert grads == {}
    assert y.shape == ref.shape == shape[:2]
    np.testing.assert_allclose(y, ref, rtol=0, atol=ATOL)
    np.testing.assert_allclose(dx, gx, rtol=0, atol=ATOL)


# (in_channels, out_channels, length, kernel, stride, padding, bias)
CONV1D_CASES = [
    (1, 2, 8, 3, 1, 0, True),
    (2, 3, 9, 3, 2, 1, True),
    (3, 2, 11, 4, 3, 2, False),
    (2, 4, 6, 1, 1, 0, True),
    (2, 2, 7, 5, 2, 3, False),  # padding larger than half the kernel
    (1, 3, 3, 3, 1, 0, True),  # output length 1
]


@pytest.mark.parametrize("spec", CONV1D_CASES, ids=str)
def test_conv1d_matches_torch(case64, spec) -> None:
    cin, cout, length, k, s, p, bias = spec
    rng = np.random.default_rng(7)
    layer = Conv1D(cin, cout, k, stride=s, padding=p, bias=bias)
    params = layer.init(rng)
    x = rng.standard_normal((3, cin, length))
    out_shape = layer.output_shape(x.shape, "test")
    dy = rng.standard_normal(out_shape)
    if bias:
        params["bias"] = rng.standard_normal(cout)  # nonzero, so a wrong bias term would show
        ref, (gx, gw, gb) = _torch_grads(lambda a, w, b: F.conv1d(a, w, b, stride=s, padding=p),
                                         [x, params["weight"], params["bias"]], dy)
    else:
        ref, (gx, gw) = _torch_grads(lambda a, w: F.conv1d(a, w, stride=s, padding=p), [x, params["weight"]], dy)
    y, dx, grads = _run(layer, x, dy, case64, params)
    assert y.shape == ref.shape == out_shape
    assert sorted(grads) == (["bias", "weight"] if bias else ["weight"])
    np.testing.assert_allclose(y, ref, rtol=0, atol=ATOL)
    np.testing.assert_allclose(dx, gx, rtol=0, atol=ATOL)
    np.testing.assert_allclose(grads["weight"], gw, rtol=0, atol=ATOL)
    if bias:
        np.testing.assert_allclose(grads["bias"], gb, rtol=0, atol=ATOL)


def test_conv1d_weight_layout_is_torch_conv1d() -> None:
    layer = Conv1D(3, 5, 4, bias_init="torch_default")
    module = torch.nn.Conv1d(3, 5, 4)
    assert layer.param_shapes() == {"weight": tuple(module.weight.shape), "bias": tuple(module.bias.shape)}


# ---- the layer contract and dtypes --------------------------------------------------------------------------
NEW_LAYERS = {
    "GELU": (GELU, (4, 5)),
    "SiLU": (SiLU, (4, 5)),
    "Softplus": (lambda: Softplus(2.0, 3.0), (4, 5)),
    "ELU": (lambda: ELU(0.5), (4, 5)),
    "GlobalAvgPool1D": (GlobalAvgPool1D, (2, 3, 7)),
    "GlobalAvgPool2D": (GlobalAvgPool2D, (2, 3, 4, 5)),
    "Conv1D": (lambda: Conv1D(3, 4, 3, stride=2, padding=1, bias_init="torch_default"), (2, 3, 9)),
}


@pytest.mark.parametrize("name", NEW_LAYERS)
def test_dtype_is_kept_and_need_dx_false_gives_the_same_grads(case, name: str) -> None:
    """float32 stays float32 (and float64 float64) in y, dx and every gradient; need_dx=False: dx None, same
    grads; nothing is stored on the layer."""
    make, shape = NEW_LAYERS[name]
    layer = make()
    rng = np.random.default_rng(9)
    params = {k: case.asarray(v) for k, v in layer.init(rng).items()}
    assert {k: tuple(v.shape) for k, v in params.items()} == layer.param_shapes()
    x = case.asarray(rng.standard_normal(shape) * 3.0)
    dy = case.asarray(rng.standard_normal(layer.output_shape(shape, "test")))
    before = dict(vars(layer))
    ctx = Context(case.xp, case.device, case.dtype, training=True)
    y, saved = layer.forward(params, x, ctx)
    dx, grads = layer.backward(params, saved, dy, ctx)
    assert vars(layer) == before
    assert dx is not None  # need_dx (the default)
    assert tuple(y.shape) == layer.output_shape(shape, "test")
    assert tuple(dx.shape) == shape
    assert set(grads) == set(layer.param_shapes())
    for out in (y, dx, *grads.values()):
        assert out.dtype == case.dtype
    _, saved = layer.forward(params, x, dataclasses.replace(ctx, need_dx=False))
    none, again = layer.backward(params, saved, dy, dataclasses.replace(ctx, need_dx=False))
    assert none is None
    assert set(again) == set(grads)
    for k, g in grads.items():
        np.testing.assert_array_equal(to_numpy(again[k]), to_numpy(g))


def test_huge_float32_inputs_stay_finite_without_warnings(case) -> None:
    """No intermediate overflows (x^3 in GELU, exp in Softplus/ELU/SiLU); warnings are errors in this suite."""
    x_host = np.array([[-1e30, -1e4, -88.0, 0.0, 88.0, 1e4, 1e30]])
    expected: dict[str, list[float | None]] = {  # limits: x or 0 at the far ends
        "gelu": [0.0, 0.0, 0.0, 0.0, 88.0, 1e4, 1e30], "silu": [0.0, 0.0, None, 0.0, 88.0, 1e4, 1e30],
        "softplus": [0.0, 0.0, None, math.log(2.0), 88.0, 1e4, 1e30], "elu": [-1.0, -1.0, -1.0, 0.0, 88.0, 1e4, 1e30],
    }
    ctx = Context(case.xp, case.device, case.dtype)
    x = case.asarray(x_host)
    for name, layer in (("gelu", GELU()), ("silu", SiLU()), ("softplus", Softplus()), ("elu", ELU())):
        y, saved = layer.forward({}, x, ctx)
        dx, _ = layer.backward({}, saved, case.asarray(np.ones_like(x_host)), ctx)
        assert dx is not None
        assert y.dtype == dx.dtype == case.dtype
        got, grad = to_numpy(y), to_numpy(dx)
        assert np.all(np.isfinite(got)), (name, got)
        assert np.all(np.isfinite(grad)), (name, grad)
        for value, want in zip(got[0], expected[name], strict=True):
            if want is not None:
                assert value == pytest.approx(want, rel=1e-6, abs=1e-6), (name, got)
        np.testing.assert_allclose(grad[0, [0, -1]], [0.0, 1.0], atol=1e-6, err_msg=name)  # 0 far left, 1 far right


# ---- errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("layer", "shape", "match"), [
    (Conv1D(3, 4, 3), (2, 1, 8), r"Conv1D\(in_channels=3.*expects input of shape \(batch, 3, length\), "
                                 r"got shape \(2, 1, 8\)"),
    (Conv1D(1, 4, 3), (2, 1, 8, 8), r"Conv1D\(.*got shape \(2, 1, 8, 8\)"),
    (Conv1D(1, 4, 3), (2, 8), r"Conv1D\(.*got shape \(2, 8\)"),
    (Conv1D(1, 4, 7, padding=1), (2, 1, 4), r"Conv1D\(.*\(2, 1, 4\) is too short for kernel 7 with padding 1 "
                                            r"\(output length would be 0\)"),
    (GlobalAvgPool1D(), (2, 3, 4, 5), r"GlobalAvgPool1D\(\).*\(batch, channels, length\), got shape \(2, 3, 4, 5\)"),
    (GlobalAvgPool1D(), (2, 3, 0), r"GlobalAvgPool1D\(\).*\(2, 3, 0\) has no positions to average"),
    (GlobalAvgPool2D(), (2, 3, 4), r"GlobalAvgPool2D\(\).*\(batch, channels, height, width\), got shape \(2, 3, 4\)"),
])
def test_bad_input_shapes_are_named(numpy64, layer, shape, match) -> None:
    net = portnn.Sequential(layer, seed=0)
    with pytest.raises(ValueError, match=match) as info:
        net.predict(np.zeros(shape))
    assert "layer 0" in str(info.value)  # the ``where`` Sequential passes


@pytest.mark.parametrize(("make", "error", "match"), [  # wrong types on purpose: each marked for mypy
    (lambda: Conv1D(0, 4, 3), ValueError, "Conv1D: in_channels must be an int >= 1, got 0"),
    (lambda: Conv1D(2, True, 3), ValueError, "Conv1D: out_channels must be an int >= 1"),
    (lambda: Conv1D(2, 4, 0), ValueError, "Conv1D: kernel_size must be an int >= 1, got 0"),
    (lambda: Conv1D(2, 4, (3, 3)), ValueError,  # type: ignore[arg-type]
     r"Conv1D: kernel_size must be an int >= 1, got \(3, 3\)"),
    (lambda: Conv1D(2, 4, 3, stride=0), ValueError, "Conv1D: stride must be an int >= 1"),
    (lambda: Conv1D(2, 4, 3, padding=-1), ValueError, "Conv1D: padding must be an int >= 0"),
    (lambda: Conv1D(2, 4, 3, init="nope"), ValueError, "init must be one of .*, got 'nope'"),
    (lambda: Conv1D(2, 4, 3, bias_init="ones"), ValueError,
     "Conv1D: bias_init must be one of 'zeros', 'torch_default', got 'ones'"),
    (lambda: Dense(2, 4, bias_init="he_uniform"), ValueError, "Dense: bias_init must be one of 'zeros', 'torch_def"),
    (lambda: Conv2D(2, 4, 3, bias_init=None), ValueError,  # type: ignore[arg-type]
     "Conv2D: bias_init must be one of .*, got None"),
    (lambda: Softplus(beta=0.0), ValueError, "Softplus: beta must be a finite number > 0, got 0.0"),
    (lambda: Softplus(threshold=math.inf), ValueError, "Softplus: threshold must be a finite number"),
    (lambda: Softplus(beta="big"), TypeError, "Softplus: beta must be a number, got 'big'"),  # type: ignore[arg-type]
    (lambda: ELU(alpha=math.nan), ValueError, "ELU: alpha must be a finite number"),
    (lambda: ELU(alpha=True), TypeError, "ELU: alpha must be a number, got True"),
])
def test_bad_arguments_are_named(make, error, match) -> None:
    with pytest.raises(error, match=match):
        make()


def test_conv1d_accepts_one_element_sequences_as_pytorch() -> None:
    layer = Conv1D(2, 3, (4,), stride=[2], padding=(1,))
    assert (layer.kernel_size, layer.stride, layer.padding) == (4, 2, 1)


def test_hyper_parameters_are_python_floats() -> None:
    layer = Softplus(np.float32(2.0), np.int64(7))  # type: ignore[arg-type]  # NumPy scalars: the point
    assert type(layer.beta) is float
    assert type(layer.threshold) is float
    assert type(ELU(np.float64(0.5)).alpha) is float
    assert layer.config() == {"beta": 2.0, "threshold": 7.0}


# ---- initialisers and bias_init -----------------------------------------------------------------------------
def test_torch_default_bounds_are_one_over_sqrt_fan_in_as_torch() -> None:
    for shape, fan_in in (((300, 200), 300), ((200, 20, 5), 100), ((100, 10, 3, 4), 120)):
        w = init.initializer("torch_default")(np.random.default_rng(1), shape)
        bound = 1.0 / math.sqrt(fan_in)
        # 60000 uniform draws: the extremes come within bound/60000 of the bounds; never beyond them
        assert np.all(np.abs(w) <= bound)
        assert w.max() > 0.999 * bound
        assert w.min() < -0.999 * bound
        # torch's own default, kaiming_uniform_(a=sqrt(5)), on torch's layout ((out, in) for Linear) has that bound
        t_shape = (shape[1], shape[0]) if len(shape) == 2 else shape
        t = torch.nn.init.kaiming_uniform_(torch.empty(t_shape, dtype=torch.float64), a=math.sqrt(5)).numpy()
        assert t.max() <= bound
        assert t.max() > 0.999 * bound


@pytest.mark.parametrize(("shape", "fan_in"), [((500, 400), 500), ((400, 20, 5, 5), 500), ((400, 25, 20), 500)])
def test_lecun_normal_std_is_one_over_sqrt_fan_in(shape: tuple[int, ...], fan_in: int) -> None:
    w = init.initializer("lecun_normal")(np.random.default_rng(2), shape)
    std = 1.0 / math.sqrt(fan_in)
    # 200000 draws: the sample std is within ~0.5% of the target (3 sigma); 2% leaves room, a wrong fan misses by
    # a factor of sqrt(2) or more. The mean's standard error is 0.0022 std.
    assert abs(w.std() / std - 1) < 0.02
    assert abs(w.mean()) < 0.02 * std
    assert np.abs(w).max() > 4 * std  # not truncated


@pytest.mark.parametrize(("make", "fan_in"), [
    (lambda: Dense(50, 4000, bias_init="torch_default"), 50),
    (lambda: Conv2D(3, 4000, (2, 3), bias_init="torch_default"), 18),
    (lambda: Conv1D(5, 4000, 3, bias_init="torch_default"), 15),
])
def test_bias_init_torch_default_draws_within_one_over_sqrt_fan_in(make, fan_in: int) -> None:
    layer = make()
    b = layer.init(np.random.default_rng(3))["bias"]
    bound = 1.0 / math.sqrt(fan_in)  # the WEIGHT's fan-in, as torch's reset_parameters
    assert b.shape == (4000,)
    assert np.all(np.abs(b) <= bound)
    assert np.all(b != 0.0)
    assert b.max() > 0.99 * bound  # 4000 draws reach within bound/4000 of the ends
    assert b.min() < -0.99 * bound
    assert layer.config()["bias_init"] == "torch_default"


@pytest.mark.parametrize(("make", "weight", "fan_in"), [
    (lambda bias_init: Dense(3, 4, bias_init=bias_init), (3, 4), 3),
    (lambda bias_init: Conv2D(2, 4, (2, 3), bias_init=bias_init), (4, 2, 2, 3), 12),
    (lambda bias_init: Conv1D(2, 4, 3, bias_init=bias_init), (4, 2, 3), 6),
], ids=["dense", "conv2d", "conv1d"])
def test_draw_order_weight_then_bias_and_the_default_draws_as_before(make, weight, fan_in: int) -> None:
    """Default bias_init: the weight is the very draw of the old code (written out here with NumPy) and nothing
    else is drawn; torch_default: the bias is the next draw of the same Generator."""
    is_dense = len(weight) == 2
    limit = math.sqrt(6.0 / (weight[0] + weight[1])) if is_dense else math.sqrt(6.0 / fan_in)  # glorot / he_uniform
    rng, ref = np.random.default_rng(4), np.random.default_rng(4)
    params = make("zeros").init(rng)
    np.testing.assert_array_equal(params["weight"], ref.uniform(-limit, limit, weight))
    np.testing.assert_array_equal(params["bias"], np.zeros(4))
    assert rng.random() == ref.random()  # the same position in the stream afterwards: no extra draws

    rng, ref = np.random.default_rng(4), np.random.default_rng(4)
    params = make("torch_default").init(rng)
    np.testing.assert_array_equal(params["weight"], ref.uniform(-limit, limit, weight))
    bound = 1.0 / math.sqrt(fan_in)
    np.testing.assert_array_equal(params["bias"], ref.uniform(-bound, bound, (4,)))


def test_default_bias_init_keeps_the_config_and_architecture_json() -> None:
    """Models with zero biases describe themselves exactly as before bias_init existed."""
    assert Dense(3, 4).config() == {"in_features": 3, "out_features": 4, "bias": True, "init": "glorot_uniform"}
    assert Conv2D(1, 2, 3).config() == {"in_channels": 1, "out_channels": 2, "kernel_size": [3, 3],
                                        "stride": [1, 1], "padding": [0, 0], "bias": True, "init": "he_uniform"}
    assert "bias_init" not in Conv1D(1, 2, 3).config()
    net = portnn.Sequential(Conv2D(1, 2, 3), portnn.Flatten(), Dense(8, 3, bias_init="torch_default"), seed=0)
    layers = checkpoint.architecture(net)["layers"]
    assert "bias_init" not in layers[0]
    assert layers[2]["bias_init"] == "torch_default"


# ---- a small model: fit, save, load -------------------------------------------------------------------------
def _signals(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(48, 2, 16) sequences, 3 classes told apart by a rising, falling or flat ramp in channel 0 (plus noise)."""
    rng = np.random.default_rng(seed)
    y = np.arange(48) % 3
    ramp = np.linspace(-1.0, 1.0, 16)
    x = rng.standard_normal((48, 2, 16)) * 0.3
    x[:, 0, :] += np.array([1.0, -1.0, 0.0])[y][:, None] * ramp
    return x, y


def test_conv1d_model_fits_saves_and_loads(tmp_path: Path) -> None:
    X, Y = _signals(0)
    net = portnn.Sequential(Conv1D(2, 8, 3, stride=1, padding=1, bias_init="torch_default"), ReLU(),
                            Conv1D(8, 8, 3, stride=2, init="torch_default"), GELU(), GlobalAvgPool1D(),
                            Dense(8, 8, init="lecun_normal"), SiLU(), Dense(8, 3), seed=3)
    history = net.fit(X, Y, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.Adam(0.02), epochs=6,
                      batch_size=16, seed=1)
    assert len(history) == 6
    assert history[-1] < history[0]  # it learns
    path = tmp_path / "conv1d.npz"
    portnn.save(net, path)
    back = portnn.load(path)
    assert repr(back) == repr(net)
    assert [type(layer) for layer in back.layers] == [type(layer) for layer in net.layers]
    assert back.layers[0].config() == net.layers[0].config()
    first = back.layers[0]
    assert isinstance(first, Conv1D)
    assert first.bias_init == "torch_default"
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)
    np.testing.assert_array_equal(to_numpy(back.predict(X)), to_numpy(net.predict(X)))
    # training continues identically from the loaded Adam state
    net.fit(X, Y, epochs=1, batch_size=16)
    back.fit(X, Y, epochs=1, batch_size=16)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)


def test_smooth_activations_and_2d_pool_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    X = np.random.default_rng(1).standard_normal((6, 1, 5, 5))
    net = portnn.Sequential(Conv2D(1, 3, 3, padding=1), ELU(alpha=0.4), Softplus(beta=2.5, threshold=8.0),
                            GlobalAvgPool2D(), Dense(3, 2, bias_init="torch_default"), seed=2)
    portnn.save(net, tmp_path / "m.npz")
    back = portnn.load(tmp_path / "m.npz")
    assert repr(back) == repr(net)
    elu, softplus = back.layers[1], back.layers[2]
    assert isinstance(elu, ELU)
    assert isinstance(softplus, Softplus)
    assert (elu.alpha, softplus.beta, softplus.threshold) == (0.4, 2.5, 8.0)
    np.testing.assert_array_equal(to_numpy(back.predict(X)), to_numpy(net.predict(X)))
