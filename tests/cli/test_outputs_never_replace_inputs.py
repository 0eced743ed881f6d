"""No command writes over the data it reads (issue 23): `portnn predict --input x.npy --output x.npy` replaced the
inputs with the predictions, `portnn export --model m.onnx --onnx m.onnx` the checkpoint with the graph. An output
that is one of the command's inputs (the same path, a symbolic link to it, a hard link, a path through a linked
folder) is exit status 2 with one line naming both options, before any work; the input is left as it was.
`train --save F --resume F` stays the resume workflow."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from portnn import datasets
from portnn.cli import main, paths
from portnn.io import checkpoint

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"


@pytest.fixture
def model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A spiral model saved by `portnn train`, and one spiral input file x.npy beside it."""
    path = tmp_path / "m.npz"
    assert main(["train", "--quiet", "--example", "spiral", "--epochs", "1", "--save", str(path)]) == 0
    capsys.readouterr()
    np.save(tmp_path / "x.npy", datasets.spiral(seed=5, n_per_class=4)[0])
    return path


def symlink(target: Path, link: Path) -> Path:
    link.symlink_to(target)
    return link


def hardlink(target: Path, link: Path) -> Path:
    os.link(target, link)
    return link


def through_linked_folder(target: Path, _link: Path) -> Path:
    folder = target.parent / "again"
    folder.symlink_to(target.parent, target_is_directory=True)
    return folder / target.name


WAYS: dict[str, Callable[[Path, Path], Path]] = {
    "same-path": lambda target, _link: target,
    "dot-path": lambda target, _link: target.parent / "." / target.name,
    "symlink": symlink, "hardlink": hardlink, "linked-folder": through_linked_folder}


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], line: str, kept: Path) -> None:
    before = kept.read_bytes()
    assert main(argv) == 2
    out = capsys.readouterr()
    assert out.out == "", f"work started before the error: {out.out!r}"
    assert out.err == line + "\n"
    assert kept.read_bytes() == before
    assert sorted(p.name for p in kept.parent.iterdir() if p.name.startswith(".")) == []  # no temporary left


@pytest.mark.parametrize("way", WAYS)
def test_predict_output_over_its_input_is_refused(model: Path, capsys: pytest.CaptureFixture[str], way: str) -> None:
    x = model.parent / "x.npy"
    out = WAYS[way](x, model.parent / "link.npy")
    refused(capsys, ["predict", "--model", str(model), "--input", str(x), "--output", str(out)],
            f"portnn predict: error: --output {out}: is the same file as --input {x}: writing it would replace the "
            "--input data; give another file name", x)


def test_predict_output_over_its_model_is_refused(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = symlink(model, model.parent / "p.npy")
    refused(capsys, ["predict", "--model", str(model), "--input", str(model.parent / "x.npy"), "--output", str(link)],
            f"portnn predict: error: --output {link}: is the same file as --model {model}: writing it would replace "
            "the --model data; give another file name", model)


@pytest.mark.parametrize("way", WAYS)
def test_export_over_its_model_is_refused(model: Path, capsys: pytest.CaptureFixture[str], way: str) -> None:
    onnx_named = model.parent / "m.onnx"  # a .npz checkpoint under an .onnx name: the reproduction
    model.rename(onnx_named)
    out = WAYS[way](onnx_named, model.parent / "link.onnx")
    refused(capsys, ["export", "--model", str(onnx_named), "--onnx", str(out)],
            f"portnn export: error: --onnx {out}: is the same file as --model {onnx_named}: writing it would replace "
            "the --model data; give another file name", onnx_named)
    st_named = onnx_named.rename(model.parent / "m.safetensors")
    refused(capsys, ["export", "--model", str(st_named), "--safetensors", str(st_named)],
            f"portnn export: error: --safetensors {st_named}: is the same file as --model {st_named}: writing it "
            "would replace the --model data; give another file name", st_named)


def test_parity_outputs_over_the_golden_file_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    golden = tmp_path / "mlp.npz"
    golden.write_bytes((GOLDEN / "mlp.npz").read_bytes())
    refused(capsys, ["parity", "--against", str(golden), "--save-golden", str(golden)],
            f"portnn parity: error: --save-golden {golden}: is the same file as --against {golden}: writing it "
            "would replace the --against data; give another file name", golden)
    report = symlink(golden, tmp_path / "report.json")
    refused(capsys, ["parity", "--against", str(golden), "--json", str(report)],
            f"portnn parity: error: --json {report}: is the same file as --against {golden}: writing it would "
            "replace the --against data; give another file name", golden)


def test_train_plot_over_the_resumed_model_is_refused(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = symlink(model, model.parent / "curves.png")
    refused(capsys, ["train", "--quiet", "--resume", str(model), "--plot", str(plot)],
            f"portnn train: error: --plot {plot}: is the same file as --resume {model}: writing it would replace the "
            "--resume data; give another file name", model)


def test_train_save_over_resume_is_the_resume_workflow(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--quiet", "--resume", str(model), "--epochs", "1", "--save", str(model)]) == 0
    assert checkpoint.load(model).epoch == 2
    assert "saved to" in capsys.readouterr().out


def test_same_file_compares_resolved_paths_and_inodes(tmp_path: Path) -> None:
    a = tmp_path / "a.npy"
    a.write_bytes(b"x")
    assert paths.same_file(a, tmp_path / "sub" / ".." / "a.npy")
    assert paths.same_file(a, hardlink(a, tmp_path / "b.npy"))
    assert paths.same_file(symlink(a, tmp_path / "c.npy"), a)
    assert not paths.same_file(a, tmp_path / "new.npy")
    (tmp_path / "d.npy").write_bytes(b"x")
    assert not paths.same_file(a, tmp_path / "d.npy")
