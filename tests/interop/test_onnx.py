"""export_onnx: every example recipe and every layer, traced from the model's own forward code on ndonnx, runs in
plain onnxruntime as model.predict does (one dynamic-batch file for every batch size, float32 and float64), passes
onnx.checker, leaves the model untouched, and refuses what it cannot trace by naming the layer."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ndonnx")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from portnn import nn as pnn  # noqa: E402
from portnn.array import host  # noqa: E402
from portnn.data import recipes  # noqa: E402
from portnn.interop.onnx_export import LEVEL, export_onnx  # noqa: E402
from portnn.nn.layer import Context, Grads, Layer  # noqa: E402
from portnn.nn.losses import MSE  # noqa: E402
from portnn.optim import Adam  # noqa: E402
from portnn.train.model import Sequential  # noqa: E402

DTYPES = ["float32", "float64"]
TOL = {"float32": 1e-5, "float64": 1e-12}
IMAGES = (1, 8, 8)  # one sample of the image recipes (digits and lines, 8x8 grey)
SHAPES = {"digits-cnn": IMAGES, "digits-resnet": IMAGES, "dropout-cnn": IMAGES, "resnet-lines": IMAGES}


def session(path: Path) -> Any:
    """A plain onnxruntime session: no further optimisation, so the file must run as written."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def rows(X: np.ndarray, n: int, dtype: str) -> np.ndarray:
    """n rows of X (cycled when X has fewer) in ``dtype``."""
    return np.ascontiguousarray(X[np.arange(n) % len(X)], dtype=dtype)


def snapshot(net: Sequential) -> tuple[dict[str, bytes], Any, dict[Any, Any]]:
    """What export must not change: every parameter/state entry's bytes, the placement, the compiled cache."""
    return {k: v.tobytes() for k, v in net.state_dict().items()}, net.placement, dict(net._compiled)


@cache
def recipe_arrays(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, y) to train on and the split to compare on: the recipe's test split where it has one, else its data."""
    r = recipes.get(name)
    X, y = (np.asarray(a) for a in r.data())
    test = np.asarray(r.test_data()[0]) if r.test_data is not None else X
    return X, y, test


@cache
def trained(name: str, dtype: str) -> Sequential:
    """A recipe's model after 3 training steps on NumPy in ``dtype``: weights and BatchNorm statistics off init."""
    r = recipes.get(name)
    X, y, _ = recipe_arrays(name)
    net = r.model(1).to("numpy", dtype=dtype)
    start = net.state_dict()
    net.fit(X[:96].astype(dtype), y[:96], loss=r.loss(), optimizer=r.optimizer(r.lr), steps=3,
            batch_size=r.batch_size)
    after = net.state_dict()
    assert all(not np.array_equal(start[k], after[k]) for k in start if "running" in k)  # BN statistics moved
    assert any(not np.array_equal(start[k], after[k]) for k in start)
    return net


# the recipes a dynamic batch exports; the sequence layers export with a fixed batch only (onnx_export.BATCH_SIZED;
# their models are checked in test_onnx_sequences.py)
EXPORTED = [name for name in recipes.RECIPES if name not in {"sort-gpt", "adding-gru", "tiny-gru", "tiny-gpt"}]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", EXPORTED)
def test_recipe_exports_and_matches_predict(name: str, dtype: str, tmp_path: Path) -> None:
    net = trained(name, dtype)
    _, _, test = recipe_arrays(name)
    net.predict(rows(test, 2, dtype))  # fills the compiled/inference cache, which export must leave alone
    before = snapshot(net)
    path = tmp_path / f"{name}.onnx"
    result = export_onnx(net, path, input_shape=SHAPES.get(name))
    after = snapshot(net)
    assert after[0] == before[0]  # the same bytes in every parameter and state entry
    assert after[1] is before[1]  # the same placement
    assert after[2].keys() == before[2].keys()  # the same compiled functions
    assert all(after[2][k] is before[2][k] for k in before[2])
    features = SHAPES.get(name, test.shape[1:])
    assert result.path == path
    assert result.dtype == dtype
    assert result.optimization == LEVEL == "ORT_ENABLE_BASIC"
    assert result.inputs == {"input": ("N", *features)}
    assert result.outputs == {"output": ("N", *net.predict(rows(test, 1, dtype)).shape[1:])}
    assert 0 < result.nodes < result.nodes_traced  # the optimisation removed nodes
    assert result.opset >= 21
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left beside it
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert {entry.domain for entry in model.opset_import} <= {"", "ai.onnx"}  # standard operators only
    assert len(model.graph.node) == result.nodes
    assert model.producer_name == "portnn"
    run = session(path)
    for n in (1, 7, len(test)):  # one dynamic-batch file for every size
        x = rows(test, n, dtype)
        got = run.run(None, {"input": x})[0]
        want = host.to_numpy(net.predict(x))
        assert got.dtype == want.dtype == np.dtype(dtype)
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= TOL[dtype], f"batch {n}: max difference {np.abs(got - want).max():.3g}"


def test_fixed_batch_export_refuses_another_batch(tmp_path: Path) -> None:
    net = trained("digits-cnn", "float32")
    _, _, test = recipe_arrays("digits-cnn")
    result = export_onnx(net, tmp_path / "fixed.onnx", batch=7, input_shape=IMAGES)
    assert result.inputs == {"input": (7, *IMAGES)}
    assert result.outputs == {"output": (7, 10)}
    dynamic = export_onnx(net, tmp_path / "dynamic.onnx", input_shape=IMAGES)
    assert result.nodes < dynamic.nodes  # the static batch folds more
    onnx.checker.check_model(onnx.load(tmp_path / "fixed.onnx"), full_check=True)
    run = session(result.path)
    x = rows(test, 7, "float32")
    assert np.abs(run.run(None, {"input": x})[0] - host.to_numpy(net.predict(x))).max() <= TOL["float32"]
    with pytest.raises(Exception, match=r"(?i)invalid dimensions|index: 0"):
        run.run(None, {"input": rows(test, 8, "float32")})


def test_export_of_an_unplaced_model(tmp_path: Path) -> None:
    net = Sequential(pnn.Dense(3, 5), pnn.Tanh(), pnn.Dense(5, 2), seed=4)  # never fitted nor placed
    weights = net.state_dict()
    result = export_onnx(net, tmp_path / "fresh.onnx")
    assert net.placement is None
    assert result.dtype == "float64"
    assert result.inputs == {"input": ("N", 3)}
    assert all(np.array_equal(weights[k], v) for k, v in net.state_dict().items())
    x = np.random.default_rng(0).standard_normal((6, 3))
    got = session(result.path).run(None, {"input": x})[0]
    assert np.abs(got - host.to_numpy(net.predict(x))).max() <= TOL["float64"]
    small = export_onnx(net, tmp_path / "fresh32.onnx", dtype="float32")  # another dtype than the model's
    got32 = session(small.path).run(None, {"input": x.astype(np.float32)})[0]
    assert got32.dtype == np.float32
    assert np.abs(got32 - got).max() <= 1e-5


def test_overwrites_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    export_onnx(Sequential(pnn.Dense(2, 2)), path)
    onnx.checker.check_model(onnx.load(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def fit_briefly(net: Sequential, X: np.ndarray, outputs: int) -> Sequential:
    """Three Adam steps towards random targets: weights and BatchNorm statistics off their init."""
    y = np.random.default_rng(1).standard_normal((len(X), outputs)).astype(X.dtype)
    start = net.state_dict()
    net.fit(X, y, loss=MSE(), optimizer=Adam(lr=0.05), steps=3, batch_size=16)
    assert all(not np.array_equal(start[k], v) for k, v in net.state_dict().items())
    return net


def signals() -> Sequential:
    """Conv1D, BatchNorm1d on (N, C, L) and (N, C), the smooth activations, GlobalAvgPool1D, LayerNorm, Residual."""
    return Sequential(pnn.Conv1D(2, 4, 3, padding=1), pnn.BatchNorm1d(4), pnn.GELU(),
                      pnn.Residual(pnn.Conv1D(4, 4, 3, stride=1, padding=1), pnn.SiLU()),
                      pnn.Conv1D(4, 4, 3, stride=2), pnn.ELU(alpha=0.7), pnn.GlobalAvgPool1D(), pnn.LayerNorm(4),
                      pnn.Dense(4, 6), pnn.BatchNorm1d(6), pnn.Softplus(beta=2.0, threshold=1.0), pnn.Dense(6, 3),
                      seed=2)


def pictures() -> Sequential:
    """Strided and padded Conv2D, AvgPool2D, MaxPool2D, LeakyReLU, Sigmoid, Dropout, Residual of LayerNorm over
    (C, H, W), GlobalAvgPool2D, Identity and Softmax."""
    return Sequential(pnn.Conv2D(2, 4, 3, stride=2, padding=(1, 2)), pnn.LeakyReLU(0.1), pnn.AvgPool2D(2, stride=1),
                      pnn.Residual(pnn.LayerNorm((4, 4, 4)), pnn.Sigmoid()), pnn.Dropout(0.3),
                      pnn.Conv2D(4, 3, (2, 1), padding=1), pnn.MaxPool2D((2, 2), stride=(1, 2)),
                      pnn.GlobalAvgPool2D(), pnn.Identity(), pnn.Softmax(), seed=3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("build", "shape", "outputs"), [(signals, (2, 12), 3), (pictures, (2, 9, 8), 3)],
                         ids=["signals", "pictures"])
def test_every_layer_exports(build: Any, shape: tuple[int, ...], outputs: int, dtype: str, tmp_path: Path) -> None:
    X = np.random.default_rng(0).standard_normal((48, *shape)).astype(dtype)
    net = fit_briefly(build().to("numpy", dtype=dtype), X, outputs)
    result = export_onnx(net, tmp_path / "net.onnx", input_shape=shape)
    assert result.inputs == {"input": ("N", *shape)}
    assert result.outputs == {"output": ("N", outputs)}
    onnx.checker.check_model(onnx.load(result.path), full_check=True)
    run = session(result.path)
    for n in (1, 7, len(X)):
        got, want = run.run(None, {"input": X[:n]})[0], host.to_numpy(net.predict(X[:n]))
        assert np.abs(got - want).max() <= TOL[dtype], f"batch {n}: max difference {np.abs(got - want).max():.3g}"


class _VectorNorm(Layer):
    """A custom layer: x / ||x|| by ``xp.linalg``, which NumPy has and ndonnx does not."""

    def forward(self, params: dict[str, Any], x: Any, ctx: Context) -> tuple[Any, Any]:
        return x / ctx.xp.linalg.vector_norm(x, axis=-1, keepdims=True), None

    def backward(self, params: dict[str, Any], saved: Any, dy: Any, ctx: Context) -> tuple[Any, Grads]:
        raise NotImplementedError


def test_an_untraceable_layer_is_named(tmp_path: Path) -> None:
    net = Sequential(pnn.Dense(3, 4), pnn.Tanh(), pnn.Residual(pnn.Dense(4, 4), _VectorNorm()), pnn.Dense(4, 1))
    assert host.to_numpy(net.predict(np.ones((2, 3)))).shape == (2, 1)  # it works on NumPy
    named = r"layer 2 \(Residual\(Dense\(.*\), _VectorNorm\(\)\)\) cannot be traced"
    with pytest.raises(TypeError, match=named) as err:
        export_onnx(net, tmp_path / "custom.onnx")
    assert "linalg" in str(err.value)
    assert not list(tmp_path.iterdir())  # nothing written


def test_arguments_are_checked(tmp_path: Path) -> None:
    cnn = trained("digits-cnn", "float64")
    fresh = recipes.get("digits-cnn").model(1)  # never fit nor predicted: it does not know its input's shape
    with pytest.raises(ValueError, match=r"export_onnx: give input_shape.*its first layer \(Conv2D.*does not fix it"):
        export_onnx(fresh, tmp_path / "a.onnx")
    with pytest.raises(ValueError, match=r"export_onnx: layer 7 \(Dense\(in_features=64"):  # 8x8 images, not 6x6
        export_onnx(cnn, tmp_path / "a.onnx", input_shape=(1, 6, 6))
    mlp = Sequential(pnn.Dense(2, 2))
    for batch, error in ((0, ValueError), (True, TypeError), ("static", TypeError), (2.0, TypeError)):
        with pytest.raises(error, match="batch must be 'dynamic' or a positive int"):
            export_onnx(mlp, tmp_path / "a.onnx", batch=batch)  # type: ignore[arg-type]  # wrong types: the point
    with pytest.raises(ValueError, match="dtype must be one of"):
        export_onnx(mlp, tmp_path / "a.onnx", dtype="float16")
    with pytest.raises(ValueError, match=r"input_shape\[0\] must be an int >= 1, got 0"):
        export_onnx(mlp, tmp_path / "a.onnx", input_shape=(0,))
    with pytest.raises(TypeError, match="must be a portnn Sequential"):
        export_onnx(pnn.Dense(2, 2), tmp_path / "a.onnx")  # type: ignore[arg-type]  # the wrong type is the point
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("missing", ["ndonnx", "onnx", "onnxruntime"])
def test_missing_packages_say_how_to_install(missing: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # import of it fails
    with pytest.raises(ImportError, match=rf'pip install "portnn\[onnx\]" \({missing} is missing'):
        export_onnx(Sequential(pnn.Dense(2, 2)), tmp_path / "a.onnx")
