"""`portnn summary --model FILE [--input-shape ...]` prints the saved model's table (``portnn.train.summary``), and
`portnn train` prints it at the start, before the first epoch (issue 23)."""

from __future__ import annotations

from pathlib import Path

import pytest

import portnn
from portnn.cli import main
from portnn.train.summary import summary


def test_summary_of_a_model_saved_by_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.npz"
    assert main(["train", "--quiet", "--example", "digits-cnn", "--epochs", "0", "--save", str(path)]) == 0
    capsys.readouterr()
    assert main(["summary", "--model", str(path)]) == 0
    out = capsys.readouterr().out
    net = portnn.load(path)
    assert out == f"model {path}: trained 0 epochs\n{summary(net, tuple(net.info['input_shape']))}\n"
    assert "input shape (None, 1, 8, 8)" in out


def test_summary_takes_an_input_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = portnn.Sequential(portnn.Conv1D(2, 3, 3), portnn.GlobalAvgPool1D())
    portnn.save(net, tmp_path / "m.npz")
    assert main(["summary", "--model", str(tmp_path / "m.npz"), "--input-shape", "2,10"]) == 0
    out = capsys.readouterr().out
    assert "0 Conv1D           (None, 3, 8)" in out
    assert main(["summary", "--model", str(tmp_path / "m.npz")]) == 2
    assert capsys.readouterr().err.startswith("portnn summary: error: summary: give input_shape")


def test_train_prints_the_summary_before_training(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--quiet", "--example", "spiral", "--epochs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = summary(portnn.recipes.get("spiral").model(1), (2,)).splitlines()
    assert lines[1:1 + len(table)] == table
    assert lines[1 + len(table)].startswith("backend numpy")
