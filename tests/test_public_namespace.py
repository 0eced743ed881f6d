"""What ``import portnn`` alone gives (issue 23): the subpackages the README names are attributes of the package, so
``portnn.testing.gradcheck_layer`` works without a second import. Checked in a fresh interpreter, where no other
test has imported the subpackage already."""

from __future__ import annotations

import subprocess
import sys


def test_import_portnn_makes_portnn_testing_usable() -> None:
    code = ("import portnn, numpy as np\n"
            "x = np.random.default_rng(0).standard_normal((3, 2))\n"
            "xp, device = portnn.backends.load('numpy')\n"
            "err = portnn.testing.gradcheck_layer(portnn.Tanh(), x, xp, device)\n"
            "print('max error', err)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.split()[-1]) < 1e-6
