"""BatchNorm1d/2d, LayerNorm and Residual: forward, backward and running statistics equal torch.nn with autograd
(float64, 1e-10) on every backend, in training and in inference; finite differences; float32 stays float32; shape
errors name the layer; nested residual blocks keep stable state_dict keys through a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

import portnn

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(5)
TOL = 1e-10


def _ctx(case, training: bool) -> portnn.Context:
    return portnn.Context(case.xp, case.device, case.dtype, training=training)


def _put(case, tree: dict) -> dict:
    return {k: case.asarray(v) for k, v in tree.items()}


NORMS = {  # name: (portnn layer, torch module, input shape)
    "bn1d-2d": (lambda: portnn.BatchNorm1d(3), lambda: torch.nn.BatchNorm1d(3), (7, 3)),
    "bn1d-3d": (lambda: portnn.BatchNorm1d(3, momentum=0.3), lambda: torch.nn.BatchNorm1d(3, momentum=0.3), (5, 3, 4)),
    "bn2d": (lambda: portnn.BatchNorm2d(2, eps=1e-3), lambda: torch.nn.BatchNorm2d(2, eps=1e-3), (4, 2, 3, 5)),
    "bn2d-no-affine": (lambda: portnn.BatchNorm2d(2, affine=False), lambda: torch.nn.BatchNorm2d(2, affine=False),
                       (3, 2, 2, 2)),
    "ln": (lambda: portnn.LayerNorm(6), lambda: torch.nn.LayerNorm(6), (4, 6)),
    "ln-2axes": (lambda: portnn.LayerNorm((3, 4)), lambda: torch.nn.LayerNorm((3, 4)), (2, 5, 3, 4)),
}


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", NORMS)
def test_norm_equals_torch(case64, name: str, training: bool) -> None:
    make, make_torch, shape = NORMS[name]
    layer, module = make(), make_torch().double()
    params = {k: RNG.standard_normal(s) for k, s in layer.param_shapes().items()}
    state = {k: (RNG.standard_normal(s) if k == "running_mean" else RNG.random(s) + 0.5)
             for k, s in layer.state_shapes().items()}
    with torch.no_grad():
        for k, v in {**params, **state}.items():
            getattr(module, k).copy_(torch.tensor(v))
    module.train(training)
    x, dy = RNG.standard_normal(shape) * 3.0 + 1.0, RNG.standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = module(xt)
    yt.backward(torch.tensor(dy))

    ctx = _ctx(case64, training)
    inputs = _put(case64, {**params, **state})
    y, saved = layer.forward(inputs, case64.asarray(x), ctx)
    dx, grads = layer.backward(inputs, saved, case64.asarray(dy), ctx)
    assert np.max(np.abs(portnn.to_numpy(y) - yt.detach().numpy())) < TOL
    assert np.max(np.abs(portnn.to_numpy(dx) - xt.grad.numpy())) < TOL
    for k in params:
        assert np.max(np.abs(portnn.to_numpy(grads[k]) - getattr(module, k).grad.numpy())) < TOL, k
    if state and training:
        new = layer.update_state(inputs, saved, ctx)
        for k in state:
            assert np.max(np.abs(portnn.to_numpy(new[k]) - getattr(module, k).numpy())) < TOL, k


def test_float32_stays_float32(case) -> None:
    if case.dtype_name != "float32":
        pytest.skip("float32 only")
    for make, _, shape in NORMS.values():
        layer = make()
        inputs = _put(case, {**layer.init(np.random.default_rng(0)), **layer.init_state()})
        for training in (True, False):
            ctx = _ctx(case, training)
            y, saved = layer.forward(inputs, case.asarray(RNG.standard_normal(shape)), ctx)
            dx, grads = layer.backward(inputs, saved, case.asarray(RNG.standard_normal(shape)), ctx)
            assert y.dtype == case.dtype
            assert dx is not None
            assert dx.dtype == case.dtype
            assert all(g.dtype == case.dtype for g in grads.values())
            if training and layer.state_shapes():
                assert all(s.dtype == case.dtype for s in layer.update_state(inputs, saved, ctx).values())


def test_batchnorm_running_statistics_after_training_equal_torch(numpy64) -> None:
    """Three training steps of a BatchNorm net update the running statistics as torch does; predict uses them."""
    x = RNG.standard_normal((12, 3)) * 2.0 + 0.5
    net = portnn.Sequential(portnn.BatchNorm1d(3), portnn.Dense(3, 1), seed=0)
    module = torch.nn.Sequential(torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1)).double()
    with torch.no_grad():
        module[1].weight.copy_(torch.tensor(net.params[1]["weight"].T))
        module[1].bias.copy_(torch.tensor(net.params[1]["bias"]))
    y = RNG.standard_normal((12, 1))
    net.fit(x, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1), epochs=3, batch_size=4, shuffle=False)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    for _ in range(3):
        for b in range(3):
            opt.zero_grad()
            torch.nn.functional.mse_loss(module(torch.tensor(x[b * 4:b * 4 + 4])), torch.tensor(y[b * 4:b * 4 + 4])
                                         ).backward()
            opt.step()
    for k in ("running_mean", "running_var"):
        assert np.max(np.abs(net.state[0][k] - getattr(module[0], k).numpy())) < TOL
    module.eval()
    expected = module(torch.tensor(x)).detach().numpy()
    assert np.max(np.abs(portnn.to_numpy(net.predict(x)) - expected)) < TOL


def test_batchnorm_bad_input() -> None:
    with pytest.raises(ValueError, match=r"layer 0 \(BatchNorm2d.*\(batch, channels, height, width\).*\(4, 3\)"):
        portnn.Sequential(portnn.BatchNorm2d(3)).predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"channels = 2, got shape \(4, 3\)"):
        portnn.Sequential(portnn.BatchNorm1d(2)).predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="more than one value per channel"):
        portnn.Sequential(portnn.BatchNorm1d(2), portnn.Dense(2, 1)).fit(np.ones((1, 2)), np.ones((1, 1)),
                                                                        loss=portnn.MSE(), optimizer=portnn.SGD())
    with pytest.raises(ValueError, match=r"BatchNorm1d: momentum must be a finite number in \(0, 1\]"):
        portnn.BatchNorm1d(2, momentum=1.5)
    with pytest.raises(ValueError, match="BatchNorm1d: features must be an int >= 1"):
        portnn.BatchNorm1d(0)
    with pytest.raises(ValueError, match=r"LayerNorm.*\(batch, \.\.\., 4\), got shape \(2, 3\)"):
        portnn.Sequential(portnn.LayerNorm(4)).predict(np.zeros((2, 3)))


# ---- Residual ---------------------------------------------------------------------------------------------------
def _residual_pair():
    """A nested residual block in portnn and torch with the same weights."""
    inner = portnn.Residual(portnn.Dense(4, 4), portnn.Tanh())
    block = portnn.Residual(portnn.Dense(4, 4), portnn.ReLU(), inner, portnn.LayerNorm(4))
    params = {k: RNG.standard_normal(s) * 0.5 for k, s in block.param_shapes().items()}

    class TorchBlock(torch.nn.Module):  # type: ignore[name-defined]  # torch: a module imported at run time
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.ln = (torch.nn.Linear(4, 4).double(), torch.nn.Linear(4, 4).double(),
                                       torch.nn.LayerNorm(4).double())

        def forward(self, x):
            h = torch.relu(self.a(x))
            h = h + torch.tanh(self.b(h))
            return x + self.ln(h)

    module = TorchBlock()
    with torch.no_grad():
        module.a.weight.copy_(torch.tensor(params["0.weight"].T))
        module.a.bias.copy_(torch.tensor(params["0.bias"]))
        module.b.weight.copy_(torch.tensor(params["2.0.weight"].T))
        module.b.bias.copy_(torch.tensor(params["2.0.bias"]))
        module.ln.weight.copy_(torch.tensor(params["3.weight"]))
        module.ln.bias.copy_(torch.tensor(params["3.bias"]))
    grads = {"0.weight": lambda: module.a.weight.grad.T, "0.bias": lambda: module.a.bias.grad,
             "2.0.weight": lambda: module.b.weight.grad.T, "2.0.bias": lambda: module.b.bias.grad,
             "3.weight": lambda: module.ln.weight.grad, "3.bias": lambda: module.ln.bias.grad}
    return block, params, module, grads


def test_residual_equals_torch(case64) -> None:
    block, params, module, torch_grads = _residual_pair()
    assert set(block.param_shapes()) == set(torch_grads)
    x, dy = RNG.standard_normal((5, 4)), RNG.standard_normal((5, 4))
    xt = torch.tensor(x, requires_grad=True)
    module(xt).backward(torch.tensor(dy))
    ctx = _ctx(case64, True)
    inputs = _put(case64, params)
    y, saved = block.forward(inputs, case64.asarray(x), ctx)
    dx, grads = block.backward(inputs, saved, case64.asarray(dy), ctx)
    assert np.max(np.abs(portnn.to_numpy(y) - module(torch.tensor(x)).detach().numpy())) < TOL
    assert np.max(np.abs(portnn.to_numpy(dx) - xt.grad.numpy())) < TOL
    for k, g in torch_grads.items():
        assert np.max(np.abs(portnn.to_numpy(grads[k]) - g().numpy())) < TOL, k


def test_residual_keys_checkpoint_and_stateful_inner(tmp_path) -> None:
    """Nested parameters and BatchNorm state are named '{i}.{j}.name', survive save/load, and train on."""
    block = portnn.Residual(portnn.BatchNorm1d(4), portnn.ReLU(), portnn.Residual(portnn.Dense(4, 4)),
                            portnn.Dropout(0.2))
    net = portnn.Sequential(portnn.Dense(3, 4), block, portnn.Dense(4, 1), seed=3)
    x, y = RNG.standard_normal((16, 3)), RNG.standard_normal((16, 1))
    net.fit(x, y, loss=portnn.MSE(), optimizer=portnn.Adam(0.01), epochs=2, batch_size=8)
    keys = set(net.state_dict())
    assert {"1.0.weight", "1.0.bias", "1.0.running_mean", "1.0.running_var", "1.2.0.weight", "1.2.0.bias"} <= keys
    path = tmp_path / "res.npz"
    portnn.save(net, path)
    again = portnn.load(path)
    assert repr(again.layers) == repr(net.layers)
    for k, v in net.state_dict().items():
        assert np.array_equal(again.state_dict()[k], v), k
    a = net.fit(x, y, epochs=2, batch_size=8)
    b = again.fit(x, y, epochs=2, batch_size=8)
    assert list(a) == list(b)
    assert all(np.array_equal(again.state_dict()[k], v) for k, v in net.state_dict().items())


def test_residual_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"layer 1 \(Residual\), inner layer 0 \(Dense.*expects input of shape "
                                         r"\(batch, 5\), got shape \(2, 4\)"):
        portnn.Sequential(portnn.Dense(3, 4), portnn.Residual(portnn.Dense(5, 4))).predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"inner layers map shape \(2, 4\) to \(2, 3\)"):
        portnn.Sequential(portnn.Residual(portnn.Dense(4, 3))).predict(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="Residual: inner layer 1 must be a portnn Layer"):
        portnn.Residual(portnn.ReLU(), "relu")  # type: ignore[arg-type]  # the wrong type is the point
    with pytest.raises(ValueError, match="at least one inner layer"):
        portnn.Residual()
