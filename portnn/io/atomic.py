"""Atomic file writes: a flock-ed temporary beside the target, fsync-ed, renamed over it; a later write to the same
path removes the temporaries of writers that died, so at most one is ever left per path."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # no flock (Windows): stale temporaries cannot be told from live ones and are left alone
    fcntl = None  # type: ignore[assignment]

_TMP_TAG = re.compile(r"[a-z0-9_]{8}")  # the random part of a temporary's name (also tempfile.mkstemp's alphabet)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporaries '.{name}.XXXXXXXX.tmp' of ``path`` left by writers that died (kill -9, power loss):
    a live writer holds an exclusive flock on its temporary, so a lock we can take belongs to no one."""
    if fcntl is None:
        return
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for entry in names:
        if not (entry.startswith(prefix) and entry.endswith(".tmp") and _TMP_TAG.fullmatch(entry[len(prefix):-4])):
            continue
        tmp = path.parent / entry
        try:
            fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: its writer is alive
            if os.path.samestat(os.fstat(fd), os.stat(tmp, follow_symlinks=False)):
                os.unlink(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)


def _locked_temporary(path: Path) -> tuple[int, Path]:
    """A new temporary beside ``path``, created with the usual mode (0666 less the umask) and flock-ed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a sweeping writer looks at it
        try:
            ours = os.path.samestat(os.fstat(fd), os.stat(tmp, follow_symlinks=False))
        except FileNotFoundError:
            ours = False
        if ours:
            return fd, tmp
        os.close(fd)  # swept between creation and lock (it looked stale): take another name
    raise FileExistsError(f"atomic_write: no free temporary name beside {path}")


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    The temporary is flock-ed while written; each call first removes this path's temporaries whose writers died,
    so at most one (that of a writer killed during this save) is ever left per path. An OSError names ``path``,
    not the temporary or folder where it happened (the user asked for ``path``)."""
    path = Path(path)
    try:
        _write(path, write)
    except OSError as err:
        if err.errno is None or err.filename == os.fspath(path):
            raise
        raise OSError(err.errno, err.strerror, os.fspath(path)) from err  # the subclass of its errno


def _write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = _locked_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:  # closing releases the lock, after the rename
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def write_npz(path: str | os.PathLike, arrays: dict[str, Any]) -> None:
    """``arrays`` (host NumPy) as an uncompressed .npz at ``path``, written atomically (no pickle)."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
