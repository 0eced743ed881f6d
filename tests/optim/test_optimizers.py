"""SGD (momentum, Nesterov, weight decay) and Adam: equal to torch.optim on every backend, pure, dtype- and
device-preserving, state moved by ``net.to``, and hyper-parameters checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np
import pytest

import portnn
from portnn import datasets

RNG = np.random.default_rng(3)
# a parameter tree as a model holds it: one {name: shape} per layer, {} for a parameter-free layer
SHAPES: list[dict[str, tuple[int, ...]]] = [{"weight": (4, 3), "bias": (3,)}, {}, {"weight": (3, 2)}]
START = [{n: RNG.standard_normal(s) for n, s in layer.items()} for layer in SHAPES]
GRADS = [[{n: RNG.standard_normal(s) for n, s in layer.items()} for layer in SHAPES] for _ in range(6)]

CONFIGS: dict[str, tuple[Callable[[], portnn.Optimizer], str, dict[str, Any]]] = {
    "sgd": (lambda: portnn.SGD(0.1), "SGD", {"lr": 0.1}),
    "sgd-momentum-wd": (lambda: portnn.SGD(0.1, momentum=0.9, weight_decay=0.01), "SGD",
                        {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    "sgd-nesterov": (lambda: portnn.SGD(0.05, momentum=0.8, nesterov=True), "SGD",
                     {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    "adam": (lambda: portnn.Adam(0.01), "Adam", {"lr": 0.01}),
    "adam-betas-eps-wd": (lambda: portnn.Adam(0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05), "Adam",
                          {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05}),
}




def _named(tree) -> dict:
    """{path: array} of a parameter tree or an optimizer state (slot -> tree, or slot -> 0-d array)."""
    if isinstance(tree, list):
        return {(i, n): a for i, layer in enumerate(tree) for n, a in layer.items()}
    out = {}
    for slot, value in tree.items():
        if isinstance(value, list):
            out.update({(slot, *k): a for k, a in _named(value).items()})
        else:
            out[(slot,)] = value
    return out


def torch_reference(kind: str, kwargs: dict) -> dict:
    """The same steps with torch.optim, float64 on the CPU; {(layer index, name): final value}."""
    torch = pytest.importorskip("torch")
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in _named(START).items()}
    opt = getattr(torch.optim, kind)(list(params.values()), **kwargs)
    for grads in GRADS:
        for k, p in params.items():
            p.grad = torch.tensor(_named(grads)[k], dtype=torch.float64)
        opt.step()
    return {k: p.detach().numpy() for k, p in params.items()}


@pytest.mark.parametrize("name", CONFIGS)
def test_equals_torch_optim(case64, name: str) -> None:
    make, kind, kwargs = CONFIGS[name]
    expected = torch_reference(kind, kwargs)
    opt = make()
    params = case64.tree(START)
    state = opt.init_state(params, case64.xp, case64.device)
    for grads in GRADS:
        params, state = opt.update(params, case64.tree(grads), state)
    assert [sorted(layer) for layer in params] == [sorted(layer) for layer in SHAPES]
    assert sorted(_named(params)) == sorted(expected)
    for k, p in _named(params).items():
        # measured: max 4.4e-16 (a few ulp) on numpy, strict, torch and jax; torch.optim orders some operations apart
        np.testing.assert_allclose(portnn.to_numpy(p), expected[k], rtol=0, atol=1e-13)


@pytest.mark.parametrize("name", CONFIGS)
def test_update_is_pure_and_keeps_dtype_and_device(case, name: str) -> None:
    opt = CONFIGS[name][0]()
    params, grads = case.tree(START), case.tree(GRADS[0])
    state = opt.init_state(params, case.xp, case.device)
    inputs = {"params": params, "grads": grads, "state": state}
    before = {what: {k: portnn.to_numpy(a) for k, a in _named(tree).items()} for what, tree in inputs.items()}
    new_params, new_state = opt.update(params, grads, state)
    for what, tree in inputs.items():  # inputs untouched
        assert sorted(_named(tree)) == sorted(before[what])
        for k, a in _named(tree).items():
            np.testing.assert_array_equal(portnn.to_numpy(a), before[what][k])
    assert sorted(_named(new_state)) == sorted(before["state"])  # the same slots, for the same parameters
    arrays = {**_named(new_params), **_named(new_state)}
    for k, a in arrays.items():
        expected = case.ints if k == ("step",) else case.dtype  # Adam's step counter is a 0-d int64 array
        assert a.dtype == expected, f"{name}: {k} is {a.dtype} in a {case.dtype_name} update"
        assert array_api_compat.device(a) == case.device
    if "step" in new_state:
        assert int(portnn.to_numpy(new_state["step"])) == 1
    assert not np.array_equal(portnn.to_numpy(new_params[0]["weight"]), before["params"][(0, "weight")])


@pytest.mark.parametrize("make", [portnn.Adam, lambda: portnn.SGD(0.1, momentum=0.9)], ids=["adam", "sgd-momentum"])
def test_update_without_state_names_the_parameter(numpy64, make) -> None:
    params = numpy64.tree(START)
    with pytest.raises(KeyError, match=r"no state for parameter \(0, 'weight'\); create it with init_state"):
        make().update(params, params, {})
    opt = make()
    state = opt.init_state(params, numpy64.xp, numpy64.device)
    slot = opt.slot_names()[0][0]
    partial = {**state, slot: [state[slot][0], {}, {}]}  # the last layer's weight has no slot
    with pytest.raises(KeyError, match=rf"no state for parameter \(2, 'weight'\).*missing '{slot}'"):
        opt.update(params, params, partial)


@pytest.mark.parametrize("make", [portnn.Adam, lambda: portnn.SGD(0.1, momentum=0.9), lambda: portnn.SGD(0.1)],
                         ids=["adam", "sgd-momentum", "sgd"])
def test_update_with_mismatched_trees_names_them(numpy64, make) -> None:
    """Gradients or state of another model, or the 0.1.0 flat layout, are refused with an error naming them (the
    structure is checked when an update fails, so a correct step pays nothing for the check)."""
    opt = make()
    params = numpy64.tree(START)
    state = opt.init_state(params, numpy64.xp, numpy64.device)
    with pytest.raises(KeyError, match=r"no gradient for parameter \(0, 'bias'\)"):
        opt.update(params, [{"weight": params[0]["weight"]}, {}, params[2]], state)
    with pytest.raises(ValueError, match="grads has 2 layers but params have 3"):
        opt.update(params, params[:2], state)
    flat = {(0, "weight"): params[0]["weight"]}
    with pytest.raises(TypeError, match=r"params must be a list with one \{name: array\} per layer, got dict"):
        opt.update(flat, flat, state)
    with pytest.raises(TypeError, match=r"grads\[0\] must be a \{name: array\} dict, got NoneType"):
        opt.update(params, [None, params[1], params[2]], state)
    for slot in opt.slot_names()[0]:
        with pytest.raises(ValueError, match=f"state slot '{slot}' has 1 layers but params have 3"):
            opt.update(params, params, {**state, slot: state[slot][:1]})
    # a model without parameters: nothing to update, and its state is what init_state made for it
    empty = opt.init_state([{}, {}], numpy64.xp, numpy64.device)
    assert opt.update([{}, {}], [{}, {}], empty) == ([{}, {}], empty)


@pytest.mark.parametrize(("make", "message"), [  # wrong types on purpose: each marked for mypy
    (lambda: portnn.SGD(0.0), r"SGD: lr must be a finite number > 0, got 0.0"),
    (lambda: portnn.SGD(0.1, momentum=1.0), r"SGD: momentum must be a finite number in \[0, 1\), got 1.0"),
    (lambda: portnn.SGD(0.1, momentum=-0.5), r"SGD: momentum must be a finite number in \[0, 1\)"),
    (lambda: portnn.SGD(0.1, nesterov=True), r"SGD: nesterov=True needs momentum > 0"),
    (lambda: portnn.SGD(0.1, weight_decay=-1), r"SGD: weight_decay must be a finite number >= 0, got -1"),
    (lambda: portnn.SGD(0.1, momentum=0.9, nesterov=1),  # type: ignore[arg-type]
     r"SGD: nesterov must be True or False"),
    (lambda: portnn.SGD("fast"), r"SGD: lr must be a number, got 'fast'"),  # type: ignore[arg-type]
    (lambda: portnn.Adam(float("nan")), r"Adam: lr must be a finite number > 0, got nan"),
    (lambda: portnn.Adam(betas=(0.9, 1.0)), r"Adam: betas\[1\] must be a finite number in \[0, 1\), got 1.0"),
    (lambda: portnn.Adam(betas=0.9), r"Adam: betas must be a pair \(beta1, beta2\), got 0.9"),  # type: ignore[arg-type]
    (lambda: portnn.Adam(eps=0), r"Adam: eps must be a finite number > 0, got 0"),
    (lambda: portnn.Adam(weight_decay=float("inf")), r"Adam: weight_decay must be a finite number >= 0, got inf"),
])
def test_bad_hyper_parameters_are_named(make, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_hyper_parameters_become_python_floats() -> None:
    # NumPy scalars are accepted and stored as Python floats (the point; np.float32 is no float subclass)
    opt = portnn.Adam(np.float64(0.01), betas=(np.float32(0.9), 0.999), eps=np.float64(1e-8))  # type: ignore[arg-type]
    assert type(opt.lr) is float
    assert all(type(b) is float for b in opt.betas)
    assert type(opt.eps) is float
    assert type(portnn.SGD(np.float64(0.1), momentum=np.float32(0.5)).momentum) is float  # type: ignore[arg-type]


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
    placement = net.placement
    assert placement is not None
    xp, device = placement.xp, placement.device
    state = _named(net.optimizer_state)
    assert {k[0] for k in state} == set(make().slot_names()[0]) | set(make().slot_names()[1])
    for key, value in state.items():
        assert array_api_compat.device(value) == device
        if key == ("step",):
            assert value.dtype == xp.int64
            assert int(portnn.to_numpy(value)) == 3 * 4  # 60 samples in batches of 16: 4 steps per epoch
        else:
            assert value.dtype == xp.float64
    assert sorted(k[1:] for k in state if k != ("step",)) == sorted(
        (i, n) for slot in make().slot_names()[0] for i, n in net.parameters())
    moved = net.fit(xp.asarray(X, device=device), xp.asarray(y, device=device), epochs=2, batch_size=16)

    _, _, ref = _small_problem()
    ref.fit(X, y, loss=portnn.SoftmaxCrossEntropy(), optimizer=make(), epochs=3, batch_size=16)
    assert moved == ref.fit(X, y, epochs=2, batch_size=16)
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(net.state_dict()[k], v)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_array_api_strict_updates_bit_identical_to_numpy(name: str, dtype: str) -> None:
    """40 steps (Adam's bias corrections once differed in the last bit from step 7 on: NumPy's 0-d results
    become scalars whose ** is the C library's pow, not the power ufunc array-api-strict runs)."""
    pytest.importorskip("array_api_strict")
    from tests.conftest import _case

    rng = np.random.default_rng(11)
    grads = [[{n: rng.standard_normal(s) for n, s in layer.items()} for layer in SHAPES] for _ in range(40)]
    finals = []
    for backend, device in (("numpy", "cpu"), ("array_api_strict", "device1")):
        case = _case(backend, device, dtype)
        opt = CONFIGS[name][0]()
        params = case.tree(START)
        state = opt.init_state(params, case.xp, case.device)
        for g in grads:
            params, state = opt.update(params, case.tree(g), state)
        finals.append({k: portnn.to_numpy(a) for k, a in _named(params).items()})
    numpy_final, strict_final = finals
    for key, value in numpy_final.items():
        assert value.dtype == np.dtype(dtype)
        assert value.tobytes() == strict_final[key].tobytes(), key
