"""``portnn train --resume`` of a checkpoint whose model does not take the example's data says so before anything
is printed or trained (issue 23); it used to print 'resuming ...' and then fail inside fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import portnn
from portnn.cli import main


def saved(path: Path, layers: list[portnn.Layer], loss: portnn.Loss, X: np.ndarray, y: np.ndarray) -> Path:
    net = portnn.Sequential(*layers)
    net.fit(X, y, loss=loss, optimizer=portnn.SGD(0.1), epochs=1)
    portnn.save(net, path)  # no info['example']: the CLI takes --example or the seed net's
    return path


def test_a_model_that_does_not_take_the_inputs_is_refused_before_any_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = np.ones((6, 2)), np.array([0, 1, 2, 0, 1, 2])
    path = saved(tmp_path / "m.npz", [portnn.Dense(2, 3)], portnn.SoftmaxCrossEntropy(), X, y)
    before = path.read_bytes()
    assert main(["train", "--quiet", "--resume", str(path), "--save", str(path)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.startswith(f"portnn train: error: --resume {path}: the model does not fit example 'seed' (inputs "
                              "of shape (4, 3)): layer 0 (Dense("), out.err
    assert "expects input of shape (batch, 2), got shape (4, 3)" in out.err
    assert path.read_bytes() == before


def test_a_model_whose_outputs_do_not_fit_the_targets_is_refused(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    X, y = np.ones((4, 3)), np.ones((4, 2))
    path = saved(tmp_path / "m.npz", [portnn.Dense(3, 2)], portnn.SSE(), X, y)
    assert main(["train", "--quiet", "--resume", str(path)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (f"portnn train: error: --resume {path}: the model does not fit example 'seed' (targets of "
                       "shape (4, 1)): SSE: y has shape (4, 1) but the network outputs shape (4, 2)\n")


def test_a_model_that_fits_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = np.ones((4, 3)), np.ones((4, 1))
    path = saved(tmp_path / "m.npz", [portnn.Dense(3, 1), portnn.Sigmoid()], portnn.SSE(), X, y)
    assert main(["train", "--quiet", "--resume", str(path), "--epochs", "1"]) == 0
    assert f"resuming {path} at epoch 1" in capsys.readouterr().out
