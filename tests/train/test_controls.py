"""Training controls: learning-rate schedules, gradient clipping, fit(steps=N) and early stopping.

A residual BatchNorm CNN trained 200 steps with a schedule and clipping equals the same torch model from the same
initial weights (float64, 1e-10) and NumPy on every backend; compiled equals eager; a resumed fit continues the
schedule bit for bit in a fresh process; early stopping restores the best epoch's weights.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import portnn

RNG = np.random.default_rng(21)
X = RNG.standard_normal((64, 1, 6, 6))
LABELS = RNG.integers(0, 4, 64)
ROOT = Path(__file__).resolve().parents[2]


def resnet(seed: int = 4) -> portnn.Sequential:
    """A small residual CNN with BatchNorm (the shape of the digits-resnet recipe). The convolutions before a
    BatchNorm have no bias, as in ResNets: its gradient is zero up to rounding, which Adam would amplify to ~1e-10."""
    return portnn.Sequential(
        portnn.Conv2D(1, 4, 3, padding=1, bias=False), portnn.BatchNorm2d(4), portnn.ReLU(),
        portnn.Residual(portnn.Conv2D(4, 4, 3, padding=1, bias=False), portnn.BatchNorm2d(4), portnn.ReLU()),
        portnn.GlobalAvgPool2D(), portnn.Dense(4, 4), seed=seed)


CONFIGS = {  # name: (optimizer, schedule, clip_norm, torch optimizer, torch scheduler, scheduler steps per ...)
    "adam-cosine-warmup-step-clip": (lambda: portnn.Adam(0.02),
                                     lambda: portnn.CosineAnnealing(200, warmup=20, interval="step"), 1.0),
    "sgd-momentum-steplr-epoch-clip": (lambda: portnn.SGD(0.1, momentum=0.9),
                                       lambda: portnn.StepLR(10, gamma=0.5), 0.5),
    "sgd-exponential-step": (lambda: portnn.SGD(0.2), lambda: portnn.ExponentialLR(0.99, interval="step"), None),
}


def torch_reference(net: portnn.Sequential, name: str, steps: int, batch: int) -> dict[str, np.ndarray]:
    """The same model, data order, optimizer, schedule and clipping in torch (float64, autograd)."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    w = {k: torch.tensor(v) for k, v in net.state_dict().items()}

    class Block(nn.Module):  # type: ignore[name-defined]  # nn: a module imported at run time (importorskip)
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)

        def forward(self, x):
            return x + torch.relu(self.bn(self.conv(x)))

    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), Block(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4)).double()
    with torch.no_grad():
        for t, k in ((model[0].weight, "0.weight"), (model[1].weight, "1.weight"),
                     (model[1].bias, "1.bias"), (model[3].conv.weight, "3.0.weight"),
                     (model[3].bn.weight, "3.1.weight"), (model[3].bn.bias, "3.1.bias"),
                     (model[6].bias, "5.bias")):
            t.copy_(w[k])
        model[6].weight.copy_(w["5.weight"].T)
    opt_name = name.split("-")[0]
    if opt_name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=0.02)
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [
            torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / 3, end_factor=1.0, total_iters=20),
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=180)], milestones=[20])
        per_step, clip = True, 1.0
    elif "steplr" in name:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, 10, gamma=0.5)
        per_step, clip = False, 0.5
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.2)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.99)
        per_step, clip = True, None
    x, y = torch.tensor(X), torch.tensor(LABELS)
    per_epoch = X.shape[0] // batch
    for s in range(steps):
        b = s % per_epoch
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[b * batch:(b + 1) * batch]), y[b * batch:(b + 1) * batch]).backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        if per_step or b == per_epoch - 1:
            sched.step()
    out = {"0.weight": model[0].weight, "1.weight": model[1].weight,
           "1.bias": model[1].bias, "1.running_mean": model[1].running_mean, "1.running_var": model[1].running_var,
           "3.0.weight": model[3].conv.weight, "3.1.weight": model[3].bn.weight,
           "3.1.bias": model[3].bn.bias, "3.1.running_mean": model[3].bn.running_mean,
           "3.1.running_var": model[3].bn.running_var, "5.weight": model[6].weight.T, "5.bias": model[6].bias}
    return {k: v.detach().numpy() for k, v in out.items()}


def _fit(net: portnn.Sequential, name: str, x, y, steps: int, **kw) -> portnn.History:
    make_opt, make_schedule, clip = CONFIGS[name]
    return net.fit(x, y, loss=portnn.SoftmaxCrossEntropy(), optimizer=make_opt(), steps=steps, batch_size=16,
                   shuffle=False, schedule=make_schedule(), clip_norm=clip if clip is not None else False, **kw)


@pytest.mark.parametrize("name", CONFIGS)
def test_200_steps_equal_torch(name: str) -> None:
    net = resnet()
    expected = torch_reference(net, name, 200, 16)
    _fit(net, name, X, LABELS, 200)
    got = net.state_dict()
    assert set(got) == set(expected)
    worst = max(float(np.max(np.abs(got[k] - expected[k]))) for k in expected)
    assert worst < 1e-10, f"{name}: max |portnn - torch| = {worst:.2e}"
    assert net.epoch == 50
    assert net.schedule_t == (200 if CONFIGS[name][1]().interval == "step" else 50)


@pytest.mark.parametrize("name", ["adam-cosine-warmup-step-clip", "sgd-momentum-steplr-epoch-clip"])
def test_every_backend_matches_numpy(case, name: str) -> None:
    """40 steps (a short last epoch: 40 = 2 x 16 + 8 rows... of 4-batch epochs) on every backend, as NumPy float64;
    float32 stays float32. JAX compiles (auto), the others run eagerly."""
    ref = resnet()
    _fit(ref, name, X, LABELS, 42)
    net = resnet()
    _fit(net, name, case.asarray(X), case.asarray(LABELS, dtype=case.ints), 42)
    assert all(a.dtype == case.dtype for layer in net.params for a in layer.values())
    assert all(a.dtype == case.dtype for layer in net.state for a in layer.values())
    got, want = net.state_dict(), ref.state_dict()
    worst = max(float(np.max(np.abs(got[k] - want[k]) / np.maximum(1.0, np.abs(want[k])))) for k in want)
    tol = case.tol()
    assert worst <= (tol if case.dtype_name == "float64" else max(tol, 1e-4)), f"{case}: {worst:.2e}"
    assert (net.epoch, net.schedule_t) == (ref.epoch, ref.schedule_t)


def test_compiled_equals_eager_with_controls() -> None:
    """Schedules per step and per epoch, clipping and a short last epoch (steps=10 of 4 per epoch), compiled by JAX
    and eager: the same weights, history, epoch and schedule counter."""
    jax = pytest.importorskip("jax")
    if not jax.config.jax_enable_x64:
        pytest.skip("float64 on JAX needs JAX_ENABLE_X64=1 (this run keeps JAX's defaults)")
    xp = jax.numpy
    for name in ("adam-cosine-warmup-step-clip", "sgd-momentum-steplr-epoch-clip"):
        results = []
        for compile in (False, True):
            net = resnet()
            history = _fit(net, name, xp.asarray(X), xp.asarray(LABELS), 10, compile=compile)
            results.append((net.state_dict(), list(history), net.epoch, net.schedule_t))
        (a, ha, ea, ta), (b, hb, eb, tb) = results
        assert (ea, ta) == (eb, tb) == (3, 10 if "step-clip" in name and "cosine" in name else 3)
        assert np.allclose(ha, hb, rtol=1e-12, atol=0)
        assert max(float(np.max(np.abs(a[k] - b[k]))) for k in a) < 1e-12


def test_steps_semantics_and_errors() -> None:
    net = resnet()
    history = net.fit(X, LABELS, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.05), steps=10,
                      batch_size=16, shuffle=False)
    assert len(history) == 3  # 4 + 4 + 2 steps: the last epoch is cut short and recorded over its 32 rows
    assert net.epoch == 3
    chunks = resnet()
    chunks.fit(X, LABELS, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.05), steps=8, batch_size=16,
               shuffle=False)
    chunks.fit(X, LABELS, steps=2, batch_size=16, shuffle=False)
    assert all(np.array_equal(chunks.state_dict()[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="give epochs or steps, not both"):
        net.fit(X, LABELS, epochs=2, steps=3)
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        net.fit(X, LABELS, steps=-1)
    before = net.state_dict()
    assert list(net.fit(X, LABELS, steps=0)) == []
    assert all(np.array_equal(net.state_dict()[k], v) for k, v in before.items())


def test_control_arguments_are_checked_before_any_work() -> None:
    net = resnet()
    kw: dict[str, Any] = {"loss": portnn.SoftmaxCrossEntropy(), "optimizer": portnn.SGD(0.1)}
    before = net.state_dict()
    with pytest.raises(TypeError, match="schedule must be a portnn schedule"):
        net.fit(X, LABELS, schedule="cosine", **kw)  # type: ignore[arg-type]  # the wrong type is the point
    with pytest.raises(ValueError, match="clip_norm must be a finite number > 0"):
        net.fit(X, LABELS, clip_norm=-1.0, **kw)
    with pytest.raises(TypeError, match=r"clip_norm must be a finite number > 0 or one of None, False, got True"):
        net.fit(X, LABELS, clip_norm=True, **kw)
    with pytest.raises(ValueError, match=r"monitor 'val_loss' is not recorded by this fit, which records loss, "
                                         r"accuracy \(pass validation_data"):
        net.fit(X, LABELS, callbacks=[portnn.EarlyStopping()], **kw)
    assert net.epoch == 0
    assert net.optimizer is None
    assert all(np.array_equal(net.state_dict()[k], v) for k, v in before.items())


def test_schedule_and_clipping_are_kept_and_saved(tmp_path) -> None:
    net = resnet()
    net.fit(X, LABELS, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1), epochs=2, batch_size=32,
            schedule=portnn.StepLR(1, gamma=0.5), clip_norm=2.0)
    path = tmp_path / "m.npz"
    portnn.save(net, path)
    again = portnn.load(path)
    assert repr(again.schedule) == repr(net.schedule)
    assert (again.schedule_t, again.clip_norm) == (2, 2.0)
    net.fit(X, LABELS, epochs=1, batch_size=32)  # continues the schedule: lr 0.1 * 0.5**2
    again.fit(X, LABELS, epochs=1, batch_size=32)
    assert all(np.array_equal(again.state_dict()[k], v) for k, v in net.state_dict().items())
    net.fit(X, LABELS, epochs=1, batch_size=32, schedule=False, clip_norm=False)
    assert (net.schedule, net.clip_norm) == (None, None)
    portnn.save(net, path)
    names = json.loads(np.load(path)["training"].tobytes())
    assert "schedule" not in names  # files without a schedule stay readable by portnn 0.1.0
    assert "clip_norm" not in names


RESUME = """
import sys, numpy as np, portnn
X, labels = np.load(sys.argv[1])["X"], np.load(sys.argv[1])["labels"]
net = portnn.load(sys.argv[2])
net.fit(X, labels, steps=int(sys.argv[3]), batch_size=16)
portnn.save(net, sys.argv[2])
"""


def test_resume_mid_schedule_in_a_fresh_process_is_bit_identical(tmp_path) -> None:
    """100 steps, save, 100 more in another process == 200 steps at once (BatchNorm state, Adam, cosine schedule
    per step with warm-up, clipping, shuffled batches), bit for bit on NumPy."""
    def start() -> portnn.Sequential:
        net = resnet()
        net.fit(X, LABELS, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.Adam(0.02), steps=100, batch_size=16,
                schedule=portnn.CosineAnnealing(200, warmup=20, interval="step"), clip_norm=1.0, seed=9)
        return net

    whole = start()
    whole.fit(X, LABELS, steps=100, batch_size=16)
    data, path = tmp_path / "data.npz", tmp_path / "m.npz"
    np.savez(data, X=X, labels=LABELS)
    portnn.save(start(), path)
    subprocess.run([sys.executable, "-c", RESUME, str(data), str(path), "100"], check=True, cwd=ROOT)
    resumed = portnn.load(path)
    assert resumed.schedule_t == whole.schedule_t == 200
    for k, v in whole.state_dict().items():
        assert np.array_equal(resumed.state_dict()[k], v), k
    assert resumed.history == whole.history


def _overfitting_data():
    """Train and validation sets whose targets disagree, so validation loss rises as training proceeds."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((32, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]])
    return x, y, x, -y


def test_early_stopping_restores_the_best_epoch() -> None:
    x, y, xv, yv = _overfitting_data()
    make = lambda: portnn.Sequential(portnn.Dense(3, 8), portnn.Tanh(), portnn.Dense(8, 1), seed=1)  # noqa: E731
    kw: dict[str, Any] = {"loss": portnn.MSE(), "optimizer": portnn.SGD(0.05), "batch_size": 8}
    stopper = portnn.EarlyStopping(monitor="val_loss", patience=2)
    net = make()
    history = net.fit(x, y, epochs=50, validation_data=(xv, yv), callbacks=[stopper], **kw)
    val = history.metrics["val_loss"]
    best = int(np.argmin(val)) + 1
    assert len(history) < 50  # stopped early
    assert stopper.stopped_epoch == len(history) == best + 2
    assert stopper.best_epoch == best
    reference = make()
    reference.fit(x, y, epochs=best, **kw)  # the same first epochs: the weights of the best one
    for k, v in reference.state_dict().items():
        assert np.array_equal(net.state_dict()[k], v), k
    assert net.epoch == len(history)  # the counter stays where training stopped (as Keras)


def test_early_stopping_compiled_equals_eager() -> None:
    jax = pytest.importorskip("jax")
    if not jax.config.jax_enable_x64:
        pytest.skip("float64 on JAX needs JAX_ENABLE_X64=1 (this run keeps JAX's defaults)")
    xp = jax.numpy
    x, y, xv, yv = _overfitting_data()
    out = []
    for compile in (False, True):
        net = portnn.Sequential(portnn.Dense(3, 8), portnn.Tanh(), portnn.Dense(8, 1), seed=1)
        stopper = portnn.EarlyStopping(patience=1)
        h = net.fit(xp.asarray(x), xp.asarray(y), loss=portnn.MSE(), optimizer=portnn.SGD(0.05), epochs=40,
                    batch_size=8, validation_data=(xp.asarray(xv), xp.asarray(yv)), callbacks=[stopper],
                    compile=compile)
        out.append((len(h), stopper.best_epoch, net.state_dict()))
    assert out[0][:2] == out[1][:2]
    assert max(float(np.max(np.abs(out[0][2][k] - out[1][2][k]))) for k in out[0][2]) < 1e-12


def test_early_stopping_arguments() -> None:
    with pytest.raises(ValueError, match="patience must be an int >= 0"):
        portnn.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode must be one of 'auto', 'min', 'max'"):
        portnn.EarlyStopping(mode="down")
    assert portnn.EarlyStopping(monitor="val_accuracy").mode == "max"
