"""A checkpoint of a model with a layer class of the user's own (issue 23): loading it where that class is defined
works; loading it in a new process that has not imported the defining module says so, naming the type and what to
do, as a ValueError naming the file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

MODULE = textwrap.dedent('''
    import portnn


    class Doubler(portnn.Layer):
        """y = 2 x: a layer of the user's own."""

        def forward(self, params, x, ctx):
            return 2.0 * x, None

        def backward(self, params, saved, dy, ctx):
            return 2.0 * dy, {}
    ''')


def run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_a_custom_layer_loads_once_its_module_is_imported(tmp_path: Path) -> None:
    (tmp_path / "mylayers.py").write_text(MODULE)
    saved = run("""
        import numpy as np, portnn, mylayers
        net = portnn.Sequential(portnn.Dense(2, 2), mylayers.Doubler())
        net.predict(np.ones((1, 2)))
        portnn.save(net, 'm.npz')
        """, tmp_path)
    assert saved.returncode == 0, saved.stderr[-2000:]
    loaded = run("import portnn, mylayers; print(portnn.load('m.npz').layers[1])", tmp_path)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip() == "Doubler()"

    forgot = run("""
        import portnn
        try:
            portnn.load('m.npz')
        except ValueError as err:
            print(err)
        """, tmp_path)
    assert forgot.returncode == 0, forgot.stderr[-2000:]
    message = forgot.stdout.strip()
    assert message.startswith("load: m.npz: architecture.layers[1] has unknown type 'Doubler'"), message
    assert "define or import the module that defines this Layer subclass before load()" in message
