"""`portnn export`: a saved model as ONNX (the printed opset and node count, onnxruntime equal to predict) and as
.safetensors (the same model); bad arguments exit 2 with one line before anything is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import portnn
from portnn import cli

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("ndonnx")
pytest.importorskip("safetensors")


def test_export_writes_onnx_and_safetensors_of_a_trained_cnn(tmp_path: Path, capsys) -> None:
    model = tmp_path / "m.npz"
    assert cli.main(["train", "--example", "dropout-cnn", "--epochs", "1", "--quiet", "--save", str(model)]) == 0
    capsys.readouterr()
    onnx_path, st_path = tmp_path / "m.onnx", tmp_path / "m.safetensors"
    assert cli.main(["export", "--model", str(model), "--onnx", str(onnx_path), "--safetensors", str(st_path)]) == 0
    out = capsys.readouterr().out
    assert "opset 21" in out
    assert "input input ('N', 1, 8, 8)" in out  # the input shape came from the example the model was trained on
    net = portnn.load(model)
    assert net.info["input_shape"] == [1, 8, 8]  # recorded by `portnn train --save`
    X = portnn.recipes.get("dropout-cnn").data()[0][:9]
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input": X})[0]
    assert np.max(np.abs(got - portnn.to_numpy(net.predict(X)))) < 1e-12
    again = portnn.load(st_path)
    assert all(np.array_equal(again.state_dict()[k], v) for k, v in net.state_dict().items())
    assert again.history == net.history


def test_export_refuses_bad_arguments(tmp_path: Path, capsys) -> None:
    model = tmp_path / "m.npz"
    portnn.save(portnn.recipes.get("seed").model(1), model)
    assert cli.main(["export", "--model", str(model)]) == 2
    assert "nothing to write" in capsys.readouterr().err
    assert cli.main(["export", "--model", str(model), "--onnx", str(tmp_path / "m.txt")]) == 2
    assert "--onnx" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["export", "--model", str(model), "--onnx", str(tmp_path / "m.onnx"), "--batch", "0"])
    assert info.value.code == 2
    assert not (tmp_path / "m.onnx").exists()
    assert cli.main(["export", "--model", str(model), "--onnx", str(tmp_path / "m.onnx"), "--batch", "4"]) == 0
    assert "input input (4, 3)" in capsys.readouterr().out


def test_export_without_the_onnx_packages_says_how_to_install_them(tmp_path: Path, capsys, monkeypatch) -> None:
    import sys

    model = tmp_path / "m.npz"
    portnn.save(portnn.recipes.get("seed").model(1), model)
    monkeypatch.setitem(sys.modules, "ndonnx", None)  # `import ndonnx` now raises ImportError
    assert cli.main(["export", "--model", str(model), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert 'pip install "portnn[onnx]"' in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
