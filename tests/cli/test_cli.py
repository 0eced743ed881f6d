"""The command line as a new user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from portnn.cli import main
from portnn.io import checkpoint


def test_portnn_train_with_no_arguments_runs_the_seed_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train"]) == 0
    out = capsys.readouterr().out
    losses = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("epoch")]
    assert len(losses) >= 10
    assert losses == sorted(losses, reverse=True)
    assert losses[-1] < 0.01
    rows = [line.split() for line in out.splitlines() if line.startswith("[")]
    assert len(rows) == 4
    for row in rows:
        prediction, target = float(row[-2]), float(row[-1])
        assert abs(prediction - target) < 0.1
    assert "backend numpy" in out


def test_entry_point_in_a_subprocess() -> None:
    done = subprocess.run([sys.executable, "-m", "portnn", "train", "--quiet", "--epochs", "50"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "epoch     50" in done.stdout


def test_train_on_strict_device1_float32(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("array_api_strict")
    assert main(["train", "--backend", "array_api_strict", "--device", "device1", "--dtype", "float32",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "device array_api_strict.Device('device1'), dtype float32" in out


def test_train_save_writes_a_loadable_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "seed.npz"
    assert main(["train", "--epochs", "100", "--seed", "3", "--quiet", "--save", str(path)]) == 0
    net = checkpoint.load(path)
    assert net.epoch == 100
    X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
    assert net.predict(X).shape == (4, 1)


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--backend", "tensorflow"], "unknown backend 'tensorflow'"),
    (["train", "--backend", "numpy", "--device", "cuda"], "backend 'numpy' has no device 'cuda'"),
])
def test_bad_arguments_exit_2_with_a_clear_message(argv: list[str], message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_numbers_are_refused_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--lr", "-1"])
    assert info.value.code == 2
    assert "portnn train: error: argument --lr: expected a finite number > 0, got '-1'" in capsys.readouterr().err


def test_cupy_without_gpu_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    from portnn import backends

    if backends.get("cupy").installed() and backends.gpu_count():
        pytest.skip("a GPU is present")
    assert main(["train", "--backend", "cupy"]) == 2
    err = capsys.readouterr().err
    assert "cupy" in err
    if not backends.cuda_evidence():
        assert "no CUDA GPU or driver is visible" in err
    assert "Traceback" not in err


def test_backends_lists_what_runs_here(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    numpy_row = next(line for line in lines if line.startswith("numpy"))
    assert numpy_row.split()[1:3] == ["yes", "cpu"]
    assert any(line.startswith("cupy") for line in lines)
