"""SGD (momentum, Nesterov, weight decay) and Adam: equal to torch.optim on every backend, pure, dtype- and
device-preserving, state moved by ``net.to``, and hyper-parameters checked."""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest

import portnn
from portnn import datasets

RNG = np.random.default_rng(3)
SHAPES = {(0, "weight"): (4, 3), (0, "bias"): (3,)}
START = {k: RNG.standard_normal(s) for k, s in SHAPES.items()}
GRADS = [{k: RNG.standard_normal(s) for k, s in SHAPES.items()} for _ in range(6)]

CONFIGS = {
    "sgd": (lambda: portnn.SGD(0.1), "SGD", {"lr": 0.1}),
    "sgd-momentum-wd": (lambda: portnn.SGD(0.1, momentum=0.9, weight_decay=0.01), "SGD",
                        {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    "sgd-nesterov": (lambda: portnn.SGD(0.05, momentum=0.8, nesterov=True), "SGD",
                     {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    "adam": (lambda: portnn.Adam(0.01), "Adam", {"lr": 0.01}),
    "adam-betas-eps-wd": (lambda: portnn.Adam(0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05), "Adam",
                          {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05}),
}


def torch_reference(kind: str, kwargs: dict) -> dict:
    """The same steps with torch.optim, float64 on the CPU."""
    torch = pytest.importorskip("torch")
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in START.items()}
    opt = getattr(torch.optim, kind)(list(params.values()), **kwargs)
    for grads in GRADS:
        for k, p in params.items():
            p.grad = torch.tensor(grads[k], dtype=torch.float64)
        opt.step()
    return {k: p.detach().numpy() for k, p in params.items()}


@pytest.mark.parametrize("name", CONFIGS)
def test_equals_torch_optim(case64, name: str) -> None:
    make, kind, kwargs = CONFIGS[name]
    expected = torch_reference(kind, kwargs)
    opt = make()
    params = {k: case64.asarray(v) for k, v in START.items()}
    state = opt.init_state(params, case64.xp, case64.device)
    for grads in GRADS:
        params, state = opt.update(params, {k: case64.asarray(g) for k, g in grads.items()}, state)
    for k, p in params.items():
        # measured: max 2.2e-16 on numpy, strict, torch and jax (1 ulp; torch.optim orders some operations otherwise)
        np.testing.assert_allclose(portnn.to_numpy(p), expected[k], rtol=0, atol=1e-13)


@pytest.mark.parametrize("name", CONFIGS)
def test_update_is_pure_and_keeps_dtype_and_device(case, name: str) -> None:
    opt = CONFIGS[name][0]()
    params = {k: case.asarray(v) for k, v in START.items()}
    grads = {k: case.asarray(g) for k, g in GRADS[0].items()}
    state = opt.init_state(params, case.xp, case.device)
    before = {k: portnn.to_numpy(p) for k, p in params.items()}
    state_before = {k: {n: a if isinstance(a, int) else portnn.to_numpy(a) for n, a in s.items()}
                    for k, s in state.items()}
    new_params, new_state = opt.update(params, grads, state)
    for k, p in params.items():
        np.testing.assert_array_equal(portnn.to_numpy(p), before[k])  # inputs untouched
    for k, slots in state.items():
        for n, a in slots.items():
            np.testing.assert_array_equal(a if isinstance(a, int) else portnn.to_numpy(a), state_before[k][n])
    arrays = [*new_params.values(), *(a for s in new_state.values() for a in s.values() if not isinstance(a, int))]
    assert arrays
    for a in arrays:
        assert a.dtype == case.dtype, f"{name}: {a.dtype} in a {case.dtype_name} update"
        assert array_api_compat.device(a) == case.device
    assert not np.array_equal(portnn.to_numpy(new_params[(0, "weight")]), before[(0, "weight")])


def test_update_without_state_names_the_parameter(numpy64) -> None:
    params = {k: numpy64.asarray(v) for k, v in START.items()}
    with pytest.raises(KeyError, match=r"no state for parameter \(0, 'weight'\); create it with init_state"):
        portnn.Adam().update(params, params, {})


@pytest.mark.parametrize(("make", "message"), [
    (lambda: portnn.SGD(0.0), r"SGD: lr must be a finite number > 0, got 0.0"),
    (lambda: portnn.SGD(0.1, momentum=1.0), r"SGD: momentum must be a finite number in \[0, 1\), got 1.0"),
    (lambda: portnn.SGD(0.1, momentum=-0.5), r"SGD: momentum must be a finite number in \[0, 1\)"),
    (lambda: portnn.SGD(0.1, nesterov=True), r"SGD: nesterov=True needs momentum > 0"),
    (lambda: portnn.SGD(0.1, weight_decay=-1), r"SGD: weight_decay must be a finite number >= 0, got -1"),
    (lambda: portnn.SGD(0.1, momentum=0.9, nesterov=1), r"SGD: nesterov must be True or False"),
    (lambda: portnn.SGD("fast"), r"SGD: lr must be a number, got 'fast'"),
    (lambda: portnn.Adam(float("nan")), r"Adam: lr must be a finite number > 0, got nan"),
    (lambda: portnn.Adam(betas=(0.9, 1.0)), r"Adam: betas\[1\] must be a finite number in \[0, 1\), got 1.0"),
    (lambda: portnn.Adam(betas=0.9), r"Adam: betas must be a pair \(beta1, beta2\), got 0.9"),
    (lambda: portnn.Adam(eps=0), r"Adam: eps must be a finite number > 0, got 0"),
    (lambda: portnn.Adam(weight_decay=float("inf")), r"Adam: weight_decay must be a finite number >= 0, got inf"),
])
def test_bad_hyper_parameters_are_named(make, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_hyper_parameters_become_python_floats() -> None:
    opt = portnn.Adam(np.float64(0.01), betas=(np.float32(0.9), 0.999), eps=np.float64(1e-8))
    assert type(opt.lr) is float
    assert all(type(b) is float for b in opt.betas)
    assert type(opt.eps) is float
    assert type(portnn.SGD(np.float64(0.1), momentum=np.float32(0.5)).momentum) is float


def _small_problem() -> tuple[np.ndarray, np.ndarray, portnn.Sequential]:
    X, y = datasets.spiral(seed=0, n_per_class=20)
    net = portnn.Sequential(portnn.Dense(2, 8), portnn.Tanh(), portnn.Dense(8, 3), seed=0)
    return X, y, net


@pytest.mark.parametrize("make", [lambda: portnn.Adam(0.01), lambda: portnn.SGD(0.1, momentum=0.9)],
                         ids=["adam", "sgd-momentum"])
def test_state_moves_with_the_model(make) -> None:
    """Train on NumPy, move to array-api-strict's device1 mid-run, continue: the state moved along (strict wraps
    NumPy, so the result equals an uninterrupted NumPy run bit for bit)."""
    pytest.importorskip("array_api_strict")
    X, y, net = _small_problem()
    net.fit(X, y, loss=portnn.SoftmaxCrossEntropy(), optimizer=make(), epochs=3, batch_size=16)
    net.to("array_api_strict", "device1")
    xp, device = net.placement.xp, net.placement.device
    for slots in net.optimizer_state.values():
        for name, value in slots.items():
            if name == "step":
                assert value == 3 * 4  # 60 samples in batches of 16: 4 steps per epoch
            else:
                assert array_api_compat.device(value) == device
                assert value.dtype == xp.float64
    moved = net.fit(xp.asarray(X, device=device), xp.asarray(y, device=device), epochs=2, batch_size=16)

    _, _, ref = _small_problem()
    ref.fit(X, y, loss=portnn.SoftmaxCrossEntropy(), optimizer=make(), epochs=3, batch_size=16)
    assert moved == ref.fit(X, y, epochs=2, batch_size=16)
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(net.state_dict()[k], v)
