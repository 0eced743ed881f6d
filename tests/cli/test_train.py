"""`portnn train` with metrics, --save/--resume/--plot, and `portnn predict`, as a user runs them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import portnn
from portnn import datasets
from portnn.cli import main


def train(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["train", "--quiet", *argv]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_spiral_prints_metrics_saves_and_resumes_bit_for_bit(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = train(capsys, "--example", "spiral", "--epochs", "3", "--save", str(tmp_path / "a.npz"))
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 3
    assert epoch_lines[0].split()[2::2] == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert "test accuracy" in out
    assert f"saved to {tmp_path / 'a.npz'} (epoch 3" in out

    out = train(capsys, "--resume", str(tmp_path / "a.npz"), "--epochs", "2", "--save", str(tmp_path / "b.npz"))
    assert "resuming" in out
    assert "now at epoch 5" in out
    train(capsys, "--example", "spiral", "--epochs", "5", "--save", str(tmp_path / "whole.npz"))
    resumed, whole = portnn.load(tmp_path / "b.npz"), portnn.load(tmp_path / "whole.npz")
    assert resumed.history == whole.history
    for k, v in whole.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v)


def test_resume_defaults_to_the_epochs_left_in_the_recipe(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    train(capsys, "--example", "spiral", "--epochs", "98", "--save", str(tmp_path / "a.npz"))
    out = train(capsys, "--resume", str(tmp_path / "a.npz"), "--backend", "array_api_strict", "--device", "device1")
    assert ", 2 epochs," in out
    assert "now at epoch 100" in out


@pytest.mark.parametrize(("extra", "message"), [
    (["--lr", "0.1"], "--lr cannot be combined with --resume"),
    (["--example", "digits-mlp"], "holds a model trained on example 'spiral', not 'digits-mlp'"),
])
def test_bad_resume_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                              message: str) -> None:
    train(capsys, "--example", "spiral", "--epochs", "1", "--save", str(tmp_path / "a.npz"))
    assert main(["train", "--quiet", "--resume", str(tmp_path / "a.npz"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_xor_is_the_seed_example(capsys: pytest.CaptureFixture[str]) -> None:
    out = train(capsys, "--example", "xor", "--epochs", "5")
    assert "3-4-1 sigmoid net on XOR" in out


def test_predict_prints_and_saves_the_same_classes_on_another_backend(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("array_api_strict")
    train(capsys, "--example", "spiral", "--epochs", "20", "--save", str(tmp_path / "m.npz"))
    X, _ = datasets.spiral(seed=5, n_per_class=10)
    np.save(tmp_path / "x.npy", X)
    expected = np.argmax(portnn.to_numpy(portnn.load(tmp_path / "m.npz").predict(X)), axis=1)
    for backend in (["--backend", "numpy"], ["--backend", "array_api_strict", "--device", "device1"]):
        out_file = tmp_path / f"pred-{backend[1]}.npy"
        assert main(["predict", "--model", str(tmp_path / "m.npz"), "--input", str(tmp_path / "x.npy"),
                     "--output", str(out_file), "--limit", "3", *backend]) == 0
        out = capsys.readouterr().out
        rows = [line.split() for line in out.splitlines() if line[:5].strip().isdigit()]
        assert [int(r[1]) for r in rows] == expected[:3].tolist()
        assert "27 more rows" in out
        assert "wrote classes of shape (30,)" in out
        np.testing.assert_array_equal(np.load(out_file), expected)
    assert main(["predict", "--model", str(tmp_path / "m.npz"), "--input", str(tmp_path / "x.npy"), "--raw",
                 "--limit", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()[3].split()) == 4  # row index + 3 logits


def test_predict_with_a_bad_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train(capsys, "--example", "spiral", "--epochs", "1", "--save", str(tmp_path / "m.npz"))
    (tmp_path / "x.txt").write_text("1 2\n")
    assert main(["predict", "--model", str(tmp_path / "m.npz"), "--input", str(tmp_path / "x.txt")]) == 2
    assert "is not a readable .npy array" in capsys.readouterr().err
    np.save(tmp_path / "wide.npy", np.zeros((2, 5)))
    assert main(["predict", "--model", str(tmp_path / "m.npz"), "--input", str(tmp_path / "wide.npy")]) == 2
    assert "expects input of shape (batch, 2), got shape (2, 5)" in capsys.readouterr().err


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = train(capsys, "--example", "spiral", "--epochs", "3", "--plot", str(tmp_path / "curve.png"))
    assert f"plot written to {tmp_path / 'curve.png'}" in out
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_fails_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert main(["train", "--quiet", "--example", "spiral", "--plot", str(tmp_path / "c.png")]) == 2
    captured = capsys.readouterr()
    assert 'pip install "portnn[plot]"' in captured.err
    assert "epoch" not in captured.out
    assert not (tmp_path / "c.png").exists()
