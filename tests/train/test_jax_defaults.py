"""JAX at its defaults (what JAX users run: no JAX_ENABLE_X64): float32 training with dropout, Adam and a per-step
schedule, eager and compiled, needs no float64 (the counter-based generator takes uint32 lanes, Adam's bias
corrections and the schedule's rates the model's dtype, counters int32), prints no warning from portnn, and ends
with the weights of a run with x64 on within float32's tolerance; a float64 model is refused saying why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from portnn import backends

pytestmark = pytest.mark.skipif(not backends.get("jax").installed(), reason="jax is not installed")
ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, warnings
import jax
warnings.simplefilter("error")  # a warning from portnn (or from JAX about what portnn asked of it) fails the run
import numpy as np, portnn
rng = np.random.default_rng(0)
X = rng.standard_normal((64, 5)).astype(np.float32)
y = (X[:, 0] > 0).astype(np.int64)
out = {"x64": bool(jax.config.jax_enable_x64)}
for compile in (False, True):
    net = portnn.Sequential(portnn.Dense(5, 16), portnn.ReLU(), portnn.Dropout(0.2), portnn.Dense(16, 2), seed=1)
    net.fit(jax.numpy.asarray(X), jax.numpy.asarray(y), loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.Adam(0.01),
            epochs=3, batch_size=16, compile=compile, schedule=portnn.StepLR(4, 0.5, interval="step"))
    out[str(compile)] = {k: v.tolist() for k, v in net.state_dict().items()}
    out["dtype"] = str(net.params[0]["weight"].dtype)
try:
    portnn.Sequential(portnn.Dense(5, 2)).to("jax", dtype="float64")
except RuntimeError as err:
    out["float64"] = str(err)
print(json.dumps(out))
"""


def run(x64: str) -> dict:
    env = {**os.environ, "JAX_ENABLE_X64": x64, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_float32_training_at_jax_defaults_equals_x64_training() -> None:
    off, on = run("0"), run("1")
    assert (off["x64"], on["x64"]) == (False, True)
    assert off["dtype"] == on["dtype"] == "float32"
    tol = backends.get("jax").tol("float32")
    for compiled in ("False", "True"):
        for key, value in on[compiled].items():
            a, b = np.asarray(off[compiled][key]), np.asarray(value)
            assert np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))) <= tol, (compiled, key)
    np.testing.assert_allclose(np.asarray(off["False"]["0.weight"]), np.asarray(off["True"]["0.weight"]),
                               rtol=0, atol=tol)  # eager and compiled agree at the defaults too
    assert "JAX_ENABLE_X64=1" in off["float64"]
    assert "float64" not in on  # with x64 a float64 model is fine
