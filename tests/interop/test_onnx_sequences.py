"""export_onnx of the sequence layers (issue 21): every new layer alone, a small GPT, a GRU classifier and stacked
bidirectional LSTMs run in plain onnxruntime as predict does (token ids as an int64 input, float32 and float64);
the layers whose forward pass sizes an array by the batch export with a fixed batch, and a dynamic batch is refused
for them by name before any work, a refusal shown to be needed."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ndonnx")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from portnn import nn as pnn  # noqa: E402
from portnn.array import host  # noqa: E402
from portnn.interop import onnx_export  # noqa: E402
from portnn.interop.onnx_export import export_onnx  # noqa: E402
from portnn.train.model import Sequential  # noqa: E402

from .sequence_models import LAYERS, MODELS, STEPS, one_layer, sample, trained  # noqa: E402
from .test_onnx import DTYPES, TOL, session  # noqa: E402

FIXED = 7  # the batch of the fixed-batch exports
DYNAMIC = ("positions", "last-step", "mean-over-time")  # the new layers that take a symbolic batch


def check_export(net: Sequential, dtype: str, path: Path, batch: int | str) -> float:
    """Export ``net``, check the file and its signature, and compare onnxruntime with predict on the batches the file
    takes; returns the largest difference."""
    shape = sample(net, 1, 0, dtype).shape[1:]
    ids = net.layers[0].integer_input
    result = export_onnx(net, path, batch=batch, input_shape=shape)
    assert (result.dtype, result.input_dtype) == (dtype, "int64" if ids else dtype)
    assert result.inputs == {"input": ("N" if batch == "dynamic" else batch, *shape)}
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert {entry.domain for entry in model.opset_import} <= {"", "ai.onnx"}  # standard operators only
    run = session(path)
    worst = 0.0
    for n in (batch,) if isinstance(batch, int) else (1, FIXED, 64):  # a str batch is "dynamic"
        x = sample(net, n, n, dtype)
        got, want = run.run(None, {"input": x})[0], host.to_numpy(net.predict(x))
        assert got.dtype == want.dtype == np.dtype(dtype)
        assert got.shape == want.shape
        worst = max(worst, float(np.abs(got - want).max()))
    assert worst <= TOL[dtype], f"max |onnxruntime - predict| = {worst:.3g}"
    return worst


@pytest.mark.parametrize("name", list(LAYERS))
def test_each_sequence_layer_exports_with_a_fixed_batch(name: str, tmp_path: Path) -> None:
    """float64 only: float32 runs the same layer code, and every new layer is exported in float32 too, by the models
    or the dynamic-batch test below (a bidirectional layer's export alone takes about 10 s on this machine)."""
    check_export(one_layer(name, "float64"), "float64", tmp_path / "layer.onnx", FIXED)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", DYNAMIC)
def test_batch_free_sequence_layers_export_with_a_dynamic_batch(name: str, dtype: str, tmp_path: Path) -> None:
    check_export(one_layer(name, dtype), dtype, tmp_path / "layer.onnx", "dynamic")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(MODELS))
def test_sequence_models_export_with_a_fixed_batch(name: str, dtype: str, tmp_path: Path) -> None:
    net = trained(name, dtype)
    before = {k: v.tobytes() for k, v in net.state_dict().items()}
    check_export(net, dtype, tmp_path / "model.onnx", FIXED)
    assert {k: v.tobytes() for k, v in net.state_dict().items()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


# ---- a dynamic batch where the forward pass sizes arrays by the batch ---------------------------------------------

# a model, the layer the refusal names, and the (top-level) layer where tracing fails without it
BATCH_SIZED: dict[str, tuple[Callable[[], Sequential], str, str]] = {
    **{name: (partial(one_layer, name, "float64"), rf"layer 0 \({kind}", rf"layer 0 \({kind}")
       for name, kind in (("embedding", "Embedding"), ("gru", "GRU"), ("gru-bidirectional-sequences", "GRU"),
                          ("lstm", "LSTM"), ("lstm-bidirectional", "LSTM"), ("attention", "MultiHeadAttention"),
                          ("attention-causal", "MultiHeadAttention"))},
    "gpt": (lambda: trained("gpt", "float64"), r"layer 0 \(Embedding", r"layer 0 \(Embedding"),
    "dense-on-sequences": (lambda: Sequential(pnn.PositionalEmbedding(STEPS, 4),
                                              pnn.Residual(pnn.LayerNorm(4), pnn.Dense(4, 4)), pnn.LastStep()),
                           r"layer 1\.1 \(Dense\(in_features=4", r"layer 1 \(Residual"),
}


@pytest.mark.parametrize("name", list(BATCH_SIZED))
def test_a_dynamic_batch_is_refused_by_name_before_any_work(name: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    make, named, _ = BATCH_SIZED[name]
    net = make()

    def no_work(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("export_onnx started tracing")

    monkeypatch.setattr(onnx_export, "Step", no_work)
    shape = sample(net, 1, 0, "float64").shape[1:]
    with pytest.raises(ValueError, match=rf"export_onnx: {named}.*exports with a fixed batch only: its forward pass "
                                         r".*pass batch=<int>"):
        export_onnx(net, tmp_path / "model.onnx", input_shape=shape)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", list(BATCH_SIZED))
def test_the_refusal_is_needed(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the rule, tracing on a symbolic batch fails in the named layer: when a layer learns to take one,
    this fails and its entry in BATCH_SIZED goes."""
    make, _, traced = BATCH_SIZED[name]
    net = make()
    monkeypatch.setattr(onnx_export, "BATCH_SIZED", {})
    shape = sample(net, 1, 0, "float64").shape[1:]
    with pytest.raises(TypeError, match=rf"export_onnx: {traced}.*cannot be traced to ONNX by ndonnx"):
        export_onnx(net, tmp_path / "model.onnx", input_shape=shape)


def test_token_ids_need_their_length(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"give input_shape.*\(T,\) for token ids.*first layer \(Embedding"):
        export_onnx(one_layer("embedding", "float64"), tmp_path / "model.onnx", batch=2)
    with pytest.raises(ValueError, match=r"longer than max_length"):
        export_onnx(one_layer("positions", "float64"), tmp_path / "model.onnx", input_shape=(STEPS + 4, 4))
