"""What a command line user expects (issue 23): bare `portnn` prints the help (exit 0, as pip and git), `--version`,
no silent abbreviations (--ep was taken as --epochs) on any parser, a typo shows its sub-command's usage and the
option it likely meant, `portnn train | head` ends quietly, the progress bar starts after the last header line,
'1 epoch', NumPy's RuntimeWarnings not printed ahead of portnn's own one-line error, and bench bars printed with
the digits that tell a value from its limit."""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest

import portnn
from portnn import cli
from portnn.bench import suite as bench
from portnn.cli import main


def exits(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def test_bare_portnn_prints_the_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("usage: portnn [-h] [--version]")
    assert all(command in out.out for command in cli.COMMANDS)
    assert out.err == ""


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert exits(["--version"], capsys) == (0, f"portnn {portnn.__version__}\n", "")


def test_no_parser_takes_an_abbreviation(capsys: pytest.CaptureFixture[str]) -> None:
    top, commands = cli.parser()
    assert not top.allow_abbrev
    required = {"predict": ["--model", "m.npz", "--input", "x.npy"], "export": ["--model", "m.npz"],
                "summary": ["--model", "m.npz"]}
    checked = 0
    for name, command in commands.items():
        assert not command.allow_abbrev, name
        options = [s for action in command._actions for s in action.option_strings if s.startswith("--")]
        for option in options:
            short = option[:-1]
            if len(short) < 4 or short in options:
                continue
            given = required.get(name, [])
            status, out, err = exits([name, *(given if option not in given else []), short, "1"], capsys)
            assert status == 2, (name, short)
            assert out == ""
            assert err.startswith(f"usage: portnn {name} ")
            if option not in given:  # else argparse says first that the option itself is missing
                assert f"portnn {name}: error: unrecognized arguments: {short} (did you mean " in err, err
                checked += 1
    assert checked > 30


@pytest.mark.parametrize(("argv", "line"), [
    (["train", "--ep", "3"], "portnn train: error: unrecognized arguments: --ep (did you mean --epochs?) 3"),
    (["train", "--epcohs", "3"], "portnn train: error: unrecognized arguments: --epcohs (did you mean --epochs?) 3"),
    (["predict", "--model", "m.npz", "--input", "x.npy", "--ouptut", "y.npy"],
     "portnn predict: error: unrecognized arguments: --ouptut (did you mean --output?) y.npy"),
    (["bench", "--nonsense"], "portnn bench: error: unrecognized arguments: --nonsense"),
])
def test_a_typo_shows_its_sub_commands_usage(capsys: pytest.CaptureFixture[str], argv: list[str], line: str) -> None:
    status, out, err = exits(argv, capsys)
    assert status == 2
    assert out == ""
    assert err.startswith(f"usage: portnn {argv[0]} [-h]")
    assert err.endswith(line + "\n")


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """`portnn train | head -3`: the reader closed its end; no 'Broken pipe' error, the shell's status 141."""
    child = subprocess.Popen([sys.executable, "-m", "portnn", "train", "--epochs", "30"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    assert child.stdout is not None
    child.stdout.close()  # before the child writes anything
    _, err = child.communicate(timeout=120)
    assert err.decode() == ""
    assert child.returncode == cli.SIGPIPE_STATUS


class FakeBar:
    """tqdm's interface as Report uses it, recording what stdout held when the bar appeared."""

    events: list[str]

    def __init__(self, capsys: pytest.CaptureFixture[str], **_kwargs: Any) -> None:
        self.capsys = capsys
        self.written: list[str] = []
        FakeBar.events.append(capsys.readouterr().out)

    def update(self, _n: int) -> None:
        pass

    def set_postfix(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def write(self, line: str) -> None:
        self.written.append(line)
        print(line)

    def close(self) -> None:
        FakeBar.events.append(self.capsys.readouterr().out)
        FakeBar.events.append("\n".join(self.written) + "\n")


def test_the_progress_bar_starts_after_every_header_line(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from portnn.cli import train

    FakeBar.events = []
    monkeypatch.setattr(train, "tqdm", lambda **kwargs: FakeBar(capsys, **kwargs))
    assert main(["train", "--example", "resnet-lines", "--epochs", "1"]) == 0
    before, during, through_bar = FakeBar.events
    assert before.rstrip().splitlines()[-1].startswith("schedule CosineAnnealing(")  # the last header line
    assert during == through_bar  # while the bar is up, only its own writes reach stdout


def test_one_epoch_is_singular(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    assert main(["train", "--quiet", "--epochs", "1", "--save", str(tmp_path / "m.npz")]) == 0
    out = capsys.readouterr().out
    assert ", 1 epoch, lr" in out
    assert "1 epochs" not in out
    np.save(tmp_path / "x.npy", np.ones((11, 3)))
    assert main(["predict", "--model", str(tmp_path / "m.npz"), "--input", str(tmp_path / "x.npy")]) == 0
    out = capsys.readouterr().out
    assert "4 layers, trained 1 epoch with SSE\n" in out
    assert "  ... 1 more row\n" in out


def test_numpy_runtime_warnings_do_not_precede_the_one_line_error() -> None:
    done = subprocess.run([sys.executable, "-m", "portnn", "train", "--example", "mlp", "--epochs", "1", "--lr",
                           "1e308", "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("portnn train: error: fit: loss is "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_other_warnings_are_shown_after_the_command(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from portnn.cli import backends

    def warns(fail: bool) -> Any:
        def run(_args: Any) -> int:
            warnings.warn("overflow encountered in matmul", RuntimeWarning, stacklevel=1)
            warnings.warn("compiling failed, eager instead", UserWarning, stacklevel=1)
            if fail:
                raise ValueError("the one-line error")
            return 0
        return run

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        monkeypatch.setattr(warnings, "showwarning", show)  # as outside pytest, which records them instead
        monkeypatch.setattr(backends, "run", warns(fail=True))
        assert main(["backends"]) == 2
        err = capsys.readouterr().err
        assert "RuntimeWarning" not in err
        assert err.index("UserWarning: compiling failed") < err.index("portnn backends: error: the one-line error")
        monkeypatch.setattr(backends, "run", warns(fail=False))
        assert main(["backends"]) == 0
        err = capsys.readouterr().err
        assert "RuntimeWarning: overflow encountered in matmul" in err
        assert "UserWarning: compiling failed" in err


def test_bench_bars_print_the_digits_that_tell_the_value_from_the_limit() -> None:
    assert bench.bar_value(1.1004, 1.1) == "1.1004"
    assert bench.bar_value(1.0996, 1.1) == "1.0996"
    assert bench.bar_value(1.1, 1.1) == "1.100"
    assert bench.bar_value(1.05, 1.1) == "1.050"
    assert float(bench.bar_value(1.1 + 2**-50, 1.1)) == 1.1 + 2**-50  # the next float after 1.1
    rows = [{"section": "memory", "name": "portnn", "threads": 1, "value": 1.0, "unit": "MB", "theory_mb": 1.0,
             "ratios": {"theory": 1.1004}}]
    result = {"bars": bench.bars(rows, "numpy")}
    assert result["bars"][0]["pass"] is False
    meta = {"backend": "numpy", "device": "cpu", "quick": False, "numpy": "x", "processor": "cpu", "blas_after": [],
            "env": {}}
    assert "FAIL  MLP epoch peak memory / theory: 1.1004 (limit <= 1.1)" in bench.table({"meta": meta, "rows": [],
                                                                                          **result})
