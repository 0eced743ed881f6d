"""A write that cannot happen names the file asked for (issue 23), not the temporary beside it that atomic_write
creates ('.m.npz.1a2b3c4d.tmp' meant nothing to the user); nothing is left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import portnn
from portnn.io.atomic import atomic_write

NET = portnn.Sequential(portnn.Dense(2, 2))


def test_a_folder_that_takes_no_files_names_the_target(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As for a read-only folder (simulated: root may write anywhere): the temporary cannot be created."""
    real_open = os.open

    def refuse(path: str | os.PathLike, flags: int, *args: int) -> int:  # args: os.open's mode
        if flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(PermissionError) as info:
        portnn.save(NET, tmp_path / "m.npz")
    assert info.value.filename == str(tmp_path / "m.npz")
    assert str(info.value) == f"[Errno 13] Permission denied: '{tmp_path / 'm.npz'}'"
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys, which even root cannot write into")
def test_a_read_only_file_system_names_the_target() -> None:
    with pytest.raises(PermissionError, match=r"^\[Errno 13\] Permission denied: '/sys/m.npz'$"):
        portnn.save(NET, "/sys/m.npz")


def test_a_file_in_place_of_a_folder_names_the_target(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError) as info:
        atomic_write(tmp_path / "file" / "out.json", lambda f: f.write(b"{}"))
    assert info.value.filename == str(tmp_path / "file" / "out.json")


def test_an_os_error_of_the_writer_names_the_target_too(tmp_path: Path) -> None:
    def fail(_f: object) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match=r"No space left on device: '.*out.bin'"):
        atomic_write(tmp_path / "out.bin", fail)
    assert list(tmp_path.iterdir()) == []
