"""The CLI checks what it will read and write, and every number it is given, before any work: exit status 2 and a
one-line message naming the option, never a traceback, never a trained model lost (issue 11, item 5). Also: the
thread settings (--threads, the default cap at the CPUs this process may use), in subprocesses so that this
process keeps its own, and the one time formatter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import portnn
from portnn import datasets
from portnn.array import threads
from portnn.cli import main, paths
from portnn.io import checkpoint
from portnn.io.duration import format_duration
from portnn.parity import run as parity

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"


def fails(capsys: pytest.CaptureFixture[str], argv: list[str], *messages: str) -> None:
    """``argv`` exits 2 with ``messages`` on stderr, having printed nothing on stdout (no work was started)."""
    assert main(argv) == 2
    out = capsys.readouterr()
    assert all(m in out.err for m in messages), out.err
    assert "Traceback" not in out.err
    assert out.out == "", f"work started before the error: {out.out!r}"


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], option: str) -> str:
    """``argv`` is refused by argparse (exit 2) with a message naming ``option``."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {option}: expected" in err, err
    return err


@pytest.fixture
def model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A spiral model saved by `portnn train`, and one spiral input file beside it."""
    path = tmp_path / "m.npz"
    assert main(["train", "--quiet", "--example", "spiral", "--epochs", "1", "--save", str(path)]) == 0
    capsys.readouterr()
    np.save(tmp_path / "x.npy", datasets.spiral(seed=5, n_per_class=4)[0])
    return path


# ---- output paths -------------------------------------------------------------------------------------------
def test_train_outputs_are_checked_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    train = ["train", "--quiet", "--example", "spiral"]
    fails(capsys, [*train, "--save", str(tmp_path)], f"portnn train: error: --save {tmp_path}: is a directory")
    fails(capsys, [*train, "--save", str(tmp_path / "m.pt")], "--save " + str(tmp_path / "m.pt")
          + ": the file name must end in .npz")
    fails(capsys, [*train, "--save", str(tmp_path / "file" / "m.npz")], f"{tmp_path / 'file'} is not a directory")
    fails(capsys, [*train, "--plot", str(tmp_path)], f"--plot {tmp_path}: is a directory")
    fails(capsys, [*train, "--plot", str(tmp_path / "c.jpg")], "must end in .png or .pdf or .svg")
    fails(capsys, [*train, "--resume", str(tmp_path / "none.npz")], f"--resume {tmp_path / 'none.npz'}: no such file")
    fails(capsys, [*train, "--resume", str(tmp_path)], f"--resume {tmp_path}: is a directory, not a file")


def test_a_failed_check_leaves_an_existing_file_alone(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = model.read_bytes()
    fails(capsys, ["train", "--quiet", "--resume", str(model), "--save", str(model), "--plot",
                   str(model.parent / "c.gif")], "--plot")
    assert model.read_bytes() == before
    assert sorted(p.name for p in model.parent.iterdir()) == ["m.npz", "x.npy"]  # no probe or temp file left


def test_missing_folders_are_made(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "new" / "deeper" / "m.npz"
    assert main(["train", "--quiet", "--epochs", "2", "--save", str(path)]) == 0
    assert checkpoint.load(path).epoch == 2
    assert f"saved to {path}" in capsys.readouterr().out


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, which takes no new files")
def test_a_folder_that_takes_no_files_is_found_by_a_probe(capsys: pytest.CaptureFixture[str]) -> None:
    """/proc refuses new files even to root (for whom os.access always says yes): the probe file finds it."""
    fails(capsys, ["train", "--quiet", "--save", "/proc/m.npz"], "--save /proc/m.npz: cannot write into /proc")
    fails(capsys, ["train", "--quiet", "--save", "/proc/a/b/m.npz"],
          "--save /proc/a/b/m.npz: folder /proc/a/b cannot be created: cannot write into /proc")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        fails(capsys, ["train", "--quiet", "--save", str(folder / "m.npz")], "is not writable (permission denied)")
        fails(capsys, ["train", "--quiet", "--save", str(folder / "sub" / "m.npz")],
              f"folder {folder / 'sub'} cannot be created: {folder} is not writable")
    finally:
        folder.chmod(0o700)


def test_predict_output_and_inputs_are_checked_before_loading(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = str(model.parent / "x.npy")
    fails(capsys, ["predict", "--model", str(model), "--input", x, "--output", str(model.parent)],
          f"portnn predict: error: --output {model.parent}: is a directory")
    fails(capsys, ["predict", "--model", str(model), "--input", x, "--output", str(model.parent / "p.csv")],
          "must end in .npy")
    fails(capsys, ["predict", "--model", str(model.parent), "--input", x], "--model")
    fails(capsys, ["predict", "--model", str(model), "--input", str(model.parent / "none.npy")],
          "--input " + str(model.parent / "none.npy") + ": no such file")


def test_parity_outputs_are_checked_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    base = ["parity", "--example", "mlp", "--epochs", "1", "--backends", "numpy"]
    fails(capsys, [*base, "--json", str(tmp_path)], f"portnn parity: error: --json {tmp_path}: is a directory")
    fails(capsys, [*base, "--json", str(tmp_path / "r.txt")], "must end in .json")
    fails(capsys, [*base, "--save-golden", str(tmp_path)], f"--save-golden {tmp_path}: is a directory")
    fails(capsys, [*base, "--dump", str(tmp_path / "file")], "exists and is not a directory")
    fails(capsys, ["parity", "--against", str(tmp_path)], f"--against {tmp_path}: is a directory, not a file")
    fails(capsys, ["parity", "--against", str(GOLDEN / "mlp.npz"), "--check-dumps", str(tmp_path / "file")],
          "--check-dumps")


def test_os_errors_are_one_line_and_bugs_keep_their_traceback(model: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*_args: object) -> None:
        raise PermissionError(13, "Permission denied", str(model))

    monkeypatch.setattr(checkpoint, "load", denied)
    assert main(["predict", "--model", str(model), "--input", str(model.parent / "x.npy")]) == 2
    assert f"portnn predict: error: [Errno 13] Permission denied: '{model}'" in capsys.readouterr().err

    def bug(*_args: object) -> None:
        raise ZeroDivisionError("a bug, not a user error")

    monkeypatch.setattr(checkpoint, "load", bug)
    with pytest.raises(ZeroDivisionError):
        main(["predict", "--model", str(model), "--input", str(model.parent / "x.npy")])


def test_path_helpers_directly(tmp_path: Path) -> None:
    assert paths.output_file(None, "--x", (".npz",)) is None
    assert paths.output_file(tmp_path / "a" / "m.NPZ", "--x", (".npz",)) == tmp_path / "a" / "m.NPZ"
    assert not (tmp_path / "a").exists()  # checked, not made: the writer makes it
    assert paths.output_dir(tmp_path / "d", "--d") == tmp_path / "d"
    with pytest.raises(ValueError, match=r"--x .*/: is a directory"):
        paths.output_file(str(tmp_path / "new") + "/", "--x", (".npz",))
    with pytest.raises(ValueError, match=r"--d .*: no such directory"):
        paths.input_dir(tmp_path / "none", "--d")
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="is a broken symbolic link"):
        paths.output_file(tmp_path / "broken" / "m.npz", "--x", (".npz",))


# ---- numbers ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "option"), [
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--epochs", "-1"], "--epochs"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--lr", "-0.1"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "inf"], "--lr"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--threads", "0"], "--threads"),
    (["train", "--epochs", "1.5"], "--epochs"),
    (["predict", "--model", "m.npz", "--input", "x.npy", "--limit", "-1"], "--limit"),
    (["predict", "--model", "m.npz", "--input", "x.npy", "--threads", "-2"], "--threads"),
    (["parity", "--epochs", "0"], "--epochs"),
    (["parity", "--tol", "-1"], "--tol"),
    (["parity", "--tol", "nan"], "--tol"),
    (["parity", "--distributed", "0"], "--distributed"),
    (["parity", "--threads", "0"], "--threads"),
    (["bench", "--repeats", "0"], "--repeats"),
])
def test_bad_numbers_exit_2_naming_the_option(argv: list[str], option: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert f"portnn {argv[0]}: error: argument {option}: expected" in refused(capsys, argv, option)


def test_batch_size_is_used_as_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--batch-size used to be `args.batch_size or the recipe's`; 300 (the whole spiral) is one step an epoch."""
    assert main(["train", "--quiet", "--example", "spiral", "--epochs", "1", "--batch-size", "300", "--save",
                 str(tmp_path / "m.npz")]) == 0
    net = portnn.load(tmp_path / "m.npz")
    assert net.info["batch_size"] == 300
    assert int(portnn.to_numpy(net.optimizer_state["step"])) == 1  # Adam's counter: one step, not 300 / 32 = 10
    capsys.readouterr()


def test_train_epochs_0_trains_nothing_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Chosen: 0 is legal for train (a fresh model saved as initialised, or a report on a resumed one)."""
    assert main(["train", "--quiet", "--epochs", "0", "--seed", "4", "--save", str(tmp_path / "m.npz")]) == 0
    out = capsys.readouterr().out
    assert "0 epochs: nothing trained, the model stays at epoch 0" in out
    saved, fresh = portnn.load(tmp_path / "m.npz"), portnn.recipes.get("seed").model(4)
    assert saved.epoch == 0
    for key, value in fresh.state_dict().items():
        np.testing.assert_array_equal(saved.state_dict()[key], value)
    fails(capsys, ["train", "--quiet", "--epochs", "0", "--plot", str(tmp_path / "c.png")],
          "0 epochs to train and no earlier history, so there is nothing to draw")


def test_parity_refuses_0_epochs_in_the_library_too() -> None:
    """Chosen: not legal for parity, where every backend would agree on untrained weights (it said 2/2 PASS)."""
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        parity.Problem.from_recipe("seed", 1, 0)


# ---- predict on bad rows ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("rows", "message"), [
    (lambda x: np.where(np.arange(x.shape[0])[:, None] == 3, np.nan, x), "has nan or inf in 1 of 12 rows, the first in "
                                                                         "row 3"),
    (lambda x: np.where(np.arange(x.shape[0])[:, None] >= 10, np.inf, x), "in 2 of 12 rows, the first in row 10"),
    (lambda x: x[:0], "has shape (0, 2): no rows to predict"),
    (lambda x: x[:, :, None], "layer 0 (Dense(in_features=2"),
])
def test_predict_on_bad_rows_exits_2_before_printing(model: Path, rows: object, message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = model.parent / "bad.npy"
    np.save(bad, rows(np.load(model.parent / "x.npy")))  # type: ignore[operator]
    fails(capsys, ["predict", "--model", str(model), "--input", str(bad)], f"portnn predict: error: --input {bad}",
          message)


# ---- plots -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "magic"), [("c.png", b"\x89PNG"), ("c.pdf", b"%PDF"), ("c.svg", b"<?xml")])
def test_plot_format_follows_the_file_name(tmp_path: Path, name: str, magic: bytes,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    assert main(["train", "--quiet", "--example", "spiral", "--epochs", "2", "--plot", str(tmp_path / name)]) == 0
    assert (tmp_path / name).read_bytes()[:len(magic)] == magic
    capsys.readouterr()


# ---- threads (each in a fresh process: thread pools are process-wide) ------------------------------------------
PROBE = """
import json, os, sys
{before}
from portnn.cli import main
code = main(sys.argv[1:])
facts = {{"code": code, "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}}
if "torch" in sys.modules:
    facts["torch"] = sys.modules["torch"].get_num_threads()
if sys.argv[sys.argv.index("--backend") + 1] == "numpy":
    from threadpoolctl import threadpool_info
    facts["blas"] = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
print("FACTS " + json.dumps(facts))
"""


def probe(backend: str, *extra: str, before: str = "", env: dict[str, str] | None = None) -> dict:
    """Run `portnn train --backend BACKEND` in a fresh process; its exit code, CPUs allowed and thread counts."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                              "OPENBLAS_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", PROBE.format(before=before), "train", "--quiet", "--epochs", "2",
                           "--backend", backend, *extra], capture_output=True, text=True, timeout=240,
                          env={**clean, **(env or {})}, cwd=ROOT, check=False)
    facts = [line for line in done.stdout.splitlines() if line.startswith("FACTS ")]
    assert facts, done.stderr[-3000:]
    return {**json.loads(facts[-1][6:]), "out": done.stdout, "err": done.stderr}


needs_two_cpus = pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                                    reason="needs an affinity mask with at least 2 CPUs to narrow")


def test_threads_1_reaches_torch() -> None:
    pytest.importorskip("torch")
    facts = probe("torch", "--threads", "1")
    assert facts["code"] == 0, facts["err"]
    assert facts["torch"] == 1
    assert "threads 1 (requested)" in facts["out"]


@needs_two_cpus
def test_torch_default_respects_the_affinity_mask_unless_the_user_set_omp() -> None:
    """torch sizes its pool at import; a mask narrowed afterwards (here to one CPU) is applied by portnn."""
    pytest.importorskip("torch")
    narrow = "import torch\nos.sched_setaffinity(0, {min(os.sched_getaffinity(0))})"
    facts = probe("torch", before=narrow)
    assert facts["code"] == 0, facts["err"]
    assert (facts["cpus"], facts["torch"]) == (1, 1)
    assert "threads 1 (capped to the 1 CPUs allowed; torch had" in facts["out"]
    facts = probe("torch", before=narrow, env={"OMP_NUM_THREADS": "2"})
    assert facts["torch"] == 2  # the user's setting wins
    assert "threads set by OMP_NUM_THREADS=2" in facts["out"]


@needs_two_cpus
def test_threads_1_on_jax_pins_the_process_before_jax_starts() -> None:
    pytest.importorskip("jax")
    facts = probe("jax", "--threads", "1")
    assert facts["code"] == 0, facts["err"]
    assert facts["cpus"] == 1  # JAX's CPU client sizes its pool from this mask when it starts
    facts = probe("jax", "--threads", "1", before="import jax.numpy as jnp\njnp.ones(1).block_until_ready()")
    assert facts["code"] == 2
    assert "can only be set before it first computes in this process" in facts["err"]


def test_threads_1_reaches_numpy_blas() -> None:
    pytest.importorskip("threadpoolctl")
    facts = probe("numpy", "--threads", "1")
    assert facts["code"] == 0, facts["err"]
    assert facts["blas"]
    assert set(facts["blas"]) == {1}


def test_use_threads_refuses_nonsense() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads must be a positive int or None"):
            threads.use_threads(bad)  # type: ignore[arg-type]


# ---- times -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0 µs"), (4.2e-7, "0.42 µs"), (7.12e-5, "71.2 µs"), (9.996e-4, "1 ms"), (0.11, "110 ms"),
    (4.424906, "4.42 s"), (59.4, "59.4 s"), (59.97, "1 min 0 s"), (322.0, "5 min 22 s"), (3725.0, "1 h 2 min"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_refuses_what_is_not_a_time() -> None:
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="format_duration"):
            format_duration(bad)


def test_train_prints_times_in_a_readable_unit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--quiet", "--epochs", "20"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("trained in"))
    words = line.split()
    units = ("µs", "ms", "s")
    assert (words[3] in units, words[5] in units) == (True, True), line  # 'trained in 1.2 ms (61 µs per epoch)'
    assert max(float(words[2]), float(words[4].lstrip("("))) < 1000, line


def test_compile_where_it_cannot_run_exits_2_before_any_work(model: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    fails(capsys, ["train", "--compile", "--epochs", "3"], "--compile: backend numpy does not compile")
    fails(capsys, ["train", "--backend", "jax", "--compile", "--distributed", "--epochs", "3"],
          "--compile: data-parallel training (--distributed) is not compiled")
    fails(capsys, ["predict", "--model", str(model), "--input", str(model), "--compile"],
          "--compile: backend numpy does not compile")
