"""A command that will read or write a .safetensors file checks for the safetensors package before any work (issue
23): `portnn train --save m.safetensors` without it trained first, then failed and saved nothing (with --resume
too). Each is exit status 2 with one line naming the option and the install command; nothing is printed before it.
The missing package is simulated with sys.modules['safetensors'] = None (import then raises ImportError)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import portnn
from portnn.cli import main

pytest.importorskip("safetensors")

INSTALL = 'the safetensors package: pip install "portnn[safetensors]"'


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A seed-net checkpoint in both formats, and inputs for it."""
    net = portnn.Sequential(portnn.Dense(3, 4), portnn.Sigmoid(), portnn.Dense(4, 1), portnn.Sigmoid())
    net.fit(np.ones((4, 3)), np.ones((4, 1)), loss=portnn.SSE(), optimizer=portnn.SGD(0.1))
    net.info = {"example": "seed"}
    for suffix in (".npz", ".safetensors"):
        portnn.save(net, tmp_path / f"m{suffix}")
    np.save(tmp_path / "x.npy", np.ones((2, 3)))
    return {"npz": tmp_path / "m.npz", "st": tmp_path / "m.safetensors", "x": tmp_path / "x.npy",
            "out": tmp_path / "out.safetensors"}


@pytest.fixture
def no_safetensors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)


CASES = {
    "train-save": (["train", "--quiet", "--save", "{out}"], "--save {out}"),
    "train-resume": (["train", "--quiet", "--resume", "{st}"], "--resume {st}"),
    "train-resume-save": (["train", "--quiet", "--resume", "{st}", "--save", "{st}"], "--resume {st}"),
    "predict-model": (["predict", "--model", "{st}", "--input", "{x}"], "--model {st}"),
    "export-model": (["export", "--model", "{st}", "--safetensors", "{out}"], "--model {st}"),
    "export-safetensors": (["export", "--model", "{npz}", "--safetensors", "{out}"], "--safetensors {out}"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_missing_safetensors_package_is_said_before_any_work(files: dict[str, Path], no_safetensors: None,
                                                               capsys: pytest.CaptureFixture[str], case: str) -> None:
    argv, option = CASES[case]
    names = {k: str(v) for k, v in files.items()}
    before = files["st"].read_bytes()
    assert main([a.format(**names) for a in argv]) == 2
    out = capsys.readouterr()
    assert out.out == "", f"work started before the error: {out.out!r}"
    command = argv[0]
    assert out.err == f"portnn {command}: error: {option.format(**names)}: .safetensors files need {INSTALL}\n"
    assert files["st"].read_bytes() == before
    assert not files["out"].exists()


def test_npz_files_need_no_safetensors(files: dict[str, Path], no_safetensors: None,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(files["npz"]), "--input", str(files["x"])]) == 0
    assert main(["train", "--quiet", "--resume", str(files["npz"]), "--epochs", "1", "--save", str(files["npz"])]) == 0
