"""Paths checked before any work: every file or folder a command will write, and the files it reads, so that a bad
path is exit status 2 with a one-line message ("--save out: is a directory"), never a traceback after training; and
no output is one of the command's inputs (``not_inputs``), so that no command replaces the data it reads."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..io import safetensors_file


def _refuse(option: str, path: str | os.PathLike, why: str) -> ValueError:
    return ValueError(f"{option} {path}: {why}")


def _packages(path: str | os.PathLike, option: str) -> None:
    """The optional package that reads and writes ``path``'s format (chosen by its suffix) is installed: a missing
    one is said before any work, not after training."""
    if safetensors_file.is_safetensors(path):
        try:
            safetensors_file.require()
        except ImportError as err:
            raise ImportError(f"{option} {path}: {err}") from err


def _writable_folder(folder: Path, option: str, path: str | os.PathLike) -> None:
    """``folder`` exists or can be made, and takes new files: checked on its nearest existing ancestor, with
    os.access and then a real probe file (os.access says yes to root on a read-only file system)."""
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        if ancestor.is_symlink():
            raise _refuse(option, path, f"{ancestor} is a broken symbolic link")
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise _refuse(option, path, f"{ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        why = f"folder {folder} is not writable" if ancestor == folder else \
            f"folder {folder} cannot be created: {ancestor} is not writable"
        raise _refuse(option, path, why + " (permission denied)")
    try:
        fd, probe = tempfile.mkstemp(dir=ancestor, prefix=".portnn-probe-")
    except OSError as err:
        why = f"cannot write into {ancestor} ({err.strerror or err})"
        raise _refuse(option, path, why if ancestor == folder else f"folder {folder} cannot be created: {why}") from err
    os.close(fd)
    os.unlink(probe)


def output_file(path: str | os.PathLike | None, option: str, suffixes: tuple[str, ...]) -> Path | None:
    """``path`` as ``option``'s output file (None passes): not a folder, one of ``suffixes`` (e.g. ('.npz',)),
    in a folder that exists or can be made and that takes new files. Raises ValueError naming the option."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir() or str(path).endswith(("/", os.sep)):
        raise _refuse(option, path, f"is a directory (give a file name, e.g. {p / ('out' + suffixes[0])})")
    if p.exists() and not p.is_file():
        raise _refuse(option, path, "exists and is not a regular file")
    if p.suffix.lower() not in suffixes:
        raise _refuse(option, path, f"the file name must end in {' or '.join(suffixes)}")
    _writable_folder(p.parent, option, path)
    _packages(path, option)
    return p


def output_dir(path: str | os.PathLike | None, option: str) -> Path | None:
    """``path`` as ``option``'s output folder (None passes): a folder, or a path where one can be made, that takes
    new files. Raises ValueError naming the option."""
    if path is None:
        return None
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise _refuse(option, path, "exists and is not a directory")
    _writable_folder(p, option, path)
    return p


def input_file(path: str | os.PathLike | None, option: str) -> Path | None:
    """``path`` as ``option``'s input file (None passes): an existing, readable regular file."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise _refuse(option, path, "is a directory, not a file")
    if not p.exists():
        raise _refuse(option, path, "no such file")
    if not p.is_file():
        raise _refuse(option, path, "is not a regular file")
    if not os.access(p, os.R_OK):
        raise _refuse(option, path, "is not readable (permission denied)")
    _packages(path, option)
    return p


def input_dir(path: str | os.PathLike | None, option: str) -> Path | None:
    """``path`` as ``option``'s input folder (None passes): an existing, readable directory."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_dir():
        raise _refuse(option, path, "no such directory" if not p.exists() else "is not a directory")
    if not os.access(p, os.R_OK | os.X_OK):
        raise _refuse(option, path, "is not readable (permission denied)")
    return p


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: the same path once symbolic links are resolved, or (where both exist) the
    same (st_dev, st_ino), as hard links are."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samestat(os.stat(a), os.stat(b))
    except OSError:  # one does not exist (yet)
        return False


def not_inputs(outputs: dict[str, str | os.PathLike | None], inputs: dict[str, str | os.PathLike | None],
               allowed: tuple[tuple[str, str], ...] = ()) -> None:
    """No output (option -> path; None passes) is one of the inputs, also through links: writing it would replace
    the data the command reads. ``allowed`` pairs (output, input) may be one file (train --save and --resume)."""
    for out_option, out in outputs.items():
        for in_option, inp in inputs.items():
            if out is None or inp is None or (out_option, in_option) in allowed:
                continue
            if same_file(out, inp):
                raise _refuse(out_option, out, f"is the same file as {in_option} {inp}: writing it would replace the "
                                               f"{in_option} data; give another file name")
