"""Compiled programs are kept on disk between runs (issue 23, item 15): the second process that trains the same
model on JAX loads every program from the cache instead of compiling it (``portnn train --example digits-cnn
--backend jax`` measured 15-18 s of CPU time without it, 6-7 s on the second run), small programs included;
``PORTNN_COMPILE_CACHE=0`` turns it off, and a cache folder the user gave JAX themselves is left as it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from portnn.array import compile as compiling

ROOT = Path(__file__).resolve().parents[2]

# one small compiled fit and a predict, counting JAX's persistent-cache events (hits, misses: programs compiled)
RUN = """
import json
import jax
import numpy as np
import portnn

events = []
jax.monitoring.register_event_listener(lambda event, **kwargs: events.append(event))
rng = np.random.default_rng(0)
X = jax.numpy.asarray(rng.normal(size=(32, 4)), dtype=jax.numpy.float32)
y = jax.numpy.asarray(rng.normal(size=(32, 1)), dtype=jax.numpy.float32)
net = portnn.Sequential(portnn.Dense(4, 8), portnn.Tanh(), portnn.Dense(8, 1), seed=0)
net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(lr=0.1), epochs=2, batch_size=8, compile=True)
net.predict(X)
print(json.dumps({"hits": events.count("/jax/compilation_cache/cache_hits"),
                  "misses": events.count("/jax/compilation_cache/cache_misses"),
                  "traces": net.compile_stats["traces"], "folder": jax.config.jax_compilation_cache_dir,
                  "min_seconds": jax.config.jax_persistent_cache_min_compile_time_secs}))
"""


def _run(env: dict[str, str]) -> dict[str, Any]:
    """RUN in a fresh process (JAX reads its cache settings once per process) with ``env`` added."""
    pytest.importorskip("jax")
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PORTNN_COMPILE_CACHE", "JAX_COMPILATION"))}
    done = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**full, "PYTHONPATH": str(ROOT), **env})
    assert done.returncode == 0, done.stderr
    assert "cache" not in done.stderr.lower(), done.stderr  # a failed read or write of JAX's cache is a warning
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_the_second_run_compiles_nothing(tmp_path: Path) -> None:
    env = {"PORTNN_COMPILE_CACHE": str(tmp_path)}
    first = _run(env)
    kept = sorted((tmp_path / "jax").iterdir())
    assert first["folder"] == str(tmp_path / "jax")
    assert first["min_seconds"] == 0.0
    assert first["misses"] > 0
    assert len(kept) == first["misses"]  # every program was written, the small ones too (no time/size threshold)
    second = _run(env)
    assert second["misses"] == 0  # nothing compiled: every program came from the folder
    assert second["hits"] == first["misses"] + first["hits"]  # (a program met twice in a process is a hit)
    assert second["traces"] == first["traces"]  # tracing (Python) still happens; XLA's compilation does not
    assert sorted((tmp_path / "jax").iterdir()) == kept


def test_the_default_folder_is_the_users_cache_folder(tmp_path: Path) -> None:
    first = _run({"XDG_CACHE_HOME": str(tmp_path)})
    assert first["misses"] > 0
    assert any((tmp_path / "portnn" / "jax").iterdir())


def test_opt_out_keeps_nothing(tmp_path: Path) -> None:
    for off in ("0", "off"):
        run = _run({"PORTNN_COMPILE_CACHE": off, "XDG_CACHE_HOME": str(tmp_path)})
        assert run["folder"] is None
        assert (run["hits"], run["misses"]) == (0, 0)  # the cache was never asked
        assert not (tmp_path / "portnn").exists()


def test_a_folder_the_user_gave_jax_is_left_alone(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    run = _run({"JAX_COMPILATION_CACHE_DIR": str(theirs), "XDG_CACHE_HOME": str(tmp_path)})
    assert not (tmp_path / "portnn").exists()
    assert run["folder"] == str(theirs)
    assert run["min_seconds"] == 1.0  # JAX's own threshold, as they left it


def test_cache_folder_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PORTNN_COMPILE_CACHE", raising=False)
    assert compiling.cache_folder("jax") == tmp_path / "xdg" / "portnn" / "jax"
    assert (tmp_path / "xdg" / "portnn" / "jax").stat().st_mode & 0o777 == 0o700  # private: a program is code
    monkeypatch.setenv("PORTNN_COMPILE_CACHE", "1")
    assert compiling.cache_folder("jax") == tmp_path / "xdg" / "portnn" / "jax"
    monkeypatch.setenv("PORTNN_COMPILE_CACHE", str(tmp_path / "mine"))
    assert compiling.cache_folder("jax") == tmp_path / "mine" / "jax"
    for off in ("0", "false", "OFF", "no"):
        monkeypatch.setenv("PORTNN_COMPILE_CACHE", off)
        assert compiling.cache_folder("jax") is None
    shared = tmp_path / "shared"
    (shared / "jax").mkdir(parents=True)
    (shared / "jax").chmod(0o777)  # others may write there: their files would run here
    monkeypatch.setenv("PORTNN_COMPILE_CACHE", str(shared))
    assert compiling.cache_folder("jax") is None
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the folder should be: compile every time, no error
    monkeypatch.setenv("PORTNN_COMPILE_CACHE", str(blocked))
    assert compiling.cache_folder("jax") is None
