"""AdamW (decoupled weight decay chosen per 'LayerType.parameter' pattern) and RMSprop (plain, momentum, centered,
L2 decay): equal to torch.optim over 100 steps on every backend (1e-12 in float64), pure, dtype-preserving, schedule
rates, hyper-parameters checked whenever set, JSON configs, and a small GRU model trained, saved and reloaded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import array_api_compat
import numpy as np
import pytest

import portnn
from portnn.array.placement import widest
from portnn.optim import OPTIMIZERS
from portnn.optim.adamw import DECAYED, qualified

torch = pytest.importorskip("torch")
LAYERS = [portnn.Dense(4, 3), portnn.LayerNorm(3), portnn.Residual(portnn.Dense(3, 3), portnn.LayerNorm(3)),
          portnn.Embedding(5, 3), portnn.GRU(3, 2), portnn.Flatten(), portnn.MultiHeadAttention(4, 2)]
RNG = np.random.default_rng(31)
START = [{n: RNG.standard_normal(s) for n, s in layer.param_shapes().items()} for layer in LAYERS]
GRADS = [[{n: RNG.standard_normal(s) for n, s in layer.param_shapes().items()} for layer in LAYERS]
         for _ in range(100)]
STEPS_ATOL = 1e-12  # 100 steps, float64 (measured: at most 2.7e-15, RMSprop with momentum)
# the default rule: weights of Dense (also inside Residual), GRU and attention; not biases, LayerNorm, Embedding
DEFAULT_DECAYED = {(0, "weight"), (2, "0.weight"), (4, "weight_ih"), (4, "weight_hh"), (6, "in_proj_weight"),
                   (6, "out_proj_weight")}




def _keys() -> list[tuple[int, str]]:
    return [(i, n) for i, layer in enumerate(START) for n in layer]


Groups = list[tuple[dict[str, Any], set[tuple[int, str]]]]  # (extra options, the keys it holds) of each group


def _torch_run(make_opt, groups: Groups | None = None) -> dict[tuple[int, str], np.ndarray]:
    """100 steps of a torch optimizer over the same parameters and gradients; ``groups`` pairs each group's extra
    options with the keys it holds (AdamW: decayed or not)."""
    params = {k: torch.tensor(START[k[0]][k[1]], dtype=torch.float64, requires_grad=True) for k in _keys()}
    opt = make_opt(list(params.values()) if groups is None else [
        {"params": [params[k] for k in _keys() if k in keys], **options} for options, keys in groups])
    for grads in GRADS:
        for k, p in params.items():
            p.grad = torch.tensor(grads[k[0]][k[1]], dtype=torch.float64)
        opt.step()
    return {k: p.detach().numpy() for k, p in params.items()}


def _ours(opt, case, steps: int = 100, lr=None):
    opt.bind(LAYERS)
    params = case.tree(START)
    state = opt.init_state(params, case.xp, case.device)
    for grads in GRADS[:steps]:
        params, state = opt.update(params, case.tree(grads), state) if lr is None else \
            opt.update(params, case.tree(grads), state, lr)
    return params, state


def _close(params, expected, atol: float = STEPS_ATOL) -> None:
    for (i, n), v in expected.items():
        np.testing.assert_allclose(portnn.to_numpy(params[i][n]), v, rtol=0, atol=atol, err_msg=f"{i}.{n}")


def _split(decayed: set[tuple[int, str]], wd: float) -> Groups:
    return [({"weight_decay": wd}, decayed), ({"weight_decay": 0.0}, set(_keys()) - decayed)]


# ---- AdamW --------------------------------------------------------------------------------------------------
ADAMW: dict[str, tuple[Callable[[], portnn.AdamW], set[tuple[int, str]], dict[str, Any], float]] = {
    "default": (lambda: portnn.AdamW(0.01), DEFAULT_DECAYED, {"lr": 0.01}, 0.01),
    "mingpt": (lambda: portnn.AdamW(5e-4 * 20, betas=(0.9, 0.95), weight_decay=0.1), DEFAULT_DECAYED,
               {"lr": 5e-4 * 20, "betas": (0.9, 0.95)}, 0.1),
    "everything": (lambda: portnn.AdamW(0.02, eps=1e-6, weight_decay=0.3, decay=["*"]), set(_keys()),
                   {"lr": 0.02, "eps": 1e-6}, 0.3),
    "patterns": (lambda: portnn.AdamW(0.01, weight_decay=0.2, decay=("Embedding.*", "*.bias*", "LayerNorm.weight")),
                 {(1, "weight"), (1, "bias"), (0, "bias"), (2, "0.bias"), (2, "1.weight"), (2, "1.bias"),
                  (3, "weight"), (4, "bias_ih"), (4, "bias_hh")},  # not 'MultiHeadAttention.in_proj_bias'

                 {"lr": 0.01}, 0.2),
}


@pytest.mark.parametrize("name", ADAMW)
def test_adamw_equals_torch(case64, name: str) -> None:
    make, decayed, kwargs, wd = ADAMW[name]
    expected = _torch_run(lambda groups: torch.optim.AdamW(groups, **kwargs), _split(decayed, wd))
    params, state = _ours(make(), case64)
    assert int(portnn.to_numpy(state["step"])) == 100
    _close(params, expected)


def test_adamw_without_decay_is_adam(numpy64) -> None:
    ours, _ = _ours(portnn.AdamW(0.01, weight_decay=0.0), numpy64, steps=20)
    adam, _ = _ours(portnn.Adam(0.01), numpy64, steps=20)
    for a, b in zip(ours, adam, strict=True):
        for n in a:
            np.testing.assert_array_equal(a[n], b[n])
    decayed, _ = _ours(portnn.AdamW(0.01, weight_decay=0.5), numpy64, steps=20)
    assert not np.allclose(decayed[0]["weight"], adam[0]["weight"])  # the decay does something
    np.testing.assert_array_equal(decayed[3]["weight"], adam[3]["weight"])  # ... but not to the embedding


def test_qualified_names_follow_nesting() -> None:
    block = portnn.Residual(portnn.Dense(3, 3), portnn.Residual(portnn.LayerNorm(3), portnn.GRU(3, 3, True)))
    assert qualified(block, "0.weight") == "Dense.weight"
    assert qualified(block, "1.0.weight") == "LayerNorm.weight"
    assert qualified(block, "1.1.weight_hh") == "GRU.weight_hh"
    opt = portnn.AdamW()
    assert [opt.decays(qualified(block, n)) for n in block.param_shapes()] == [
        True, False, False, False, True, True, False, False]
    assert all(not opt.decays(f"{kind}.weight") for kind in ("Embedding", "PositionalEmbedding", "LayerNorm",
                                                               "BatchNorm1d", "BatchNorm2d"))
    assert all(opt.decays(p.replace("*", "reverse")) for p in DECAYED)


def test_adamw_must_be_bound_to_the_model_it_updates(numpy64) -> None:
    opt = portnn.AdamW()
    params = numpy64.tree(START)
    state = opt.init_state(params, numpy64.xp, numpy64.device)
    with pytest.raises(RuntimeError, match=r"AdamW.update: which parameters decay depends on their layers; call "
                                           r"bind\(model layers\) first"):
        opt.update(params, params, state)
    opt.bind(LAYERS[:2])
    with pytest.raises(ValueError, match=r"AdamW.update: params .* do not belong to the layers it was bound to"):
        opt.update(params, params, state)
    assert opt.bind(LAYERS) is opt  # bind returns the optimizer, so it chains
    opt.update(params, params, state)
    assert portnn.SGD(0.1).bind(LAYERS) is not None  # every optimizer has the hook (a no-op elsewhere)


# ---- RMSprop ------------------------------------------------------------------------------------------------
RMSPROP: dict[str, dict[str, Any]] = {
    "default": {},
    "lr-alpha-eps": {"lr": 0.003, "alpha": 0.9, "eps": 1e-6},
    "momentum": {"momentum": 0.9},
    "centered": {"centered": True},
    "everything": {"lr": 0.005, "alpha": 0.95, "momentum": 0.5, "centered": True, "weight_decay": 0.1},
    "weight-decay": {"weight_decay": 0.05},
}


@pytest.mark.parametrize("name", RMSPROP)
def test_rmsprop_equals_torch(case64, name: str) -> None:
    kwargs = RMSPROP[name]
    expected = _torch_run(lambda params: torch.optim.RMSprop(params, **kwargs))
    params, state = _ours(portnn.RMSprop(**kwargs), case64)
    assert set(state) == {"square_avg"} | ({"momentum_buffer"} if kwargs.get("momentum") else set()) | (
        {"grad_avg"} if kwargs.get("centered") else set())
    _close(params, expected)


# ---- both -----------------------------------------------------------------------------------------------------
MAKERS = {"adamw": lambda: portnn.AdamW(0.01, weight_decay=0.1),
          "rmsprop": lambda: portnn.RMSprop(0.01, momentum=0.9, centered=True, weight_decay=0.01)}


@pytest.mark.parametrize("name", MAKERS)
def test_update_is_pure_and_keeps_dtype(case, name: str) -> None:
    opt = MAKERS[name]().bind(LAYERS)
    params, grads = case.tree(START), case.tree(GRADS[0])
    state = opt.init_state(params, case.xp, case.device)
    before = [{n: portnn.to_numpy(a) for n, a in layer.items()} for layer in params]
    new, new_state = opt.update(params, grads, state)
    for layer, host in zip(params, before, strict=True):
        for n, a in layer.items():
            np.testing.assert_array_equal(portnn.to_numpy(a), host[n])
    leaves = [a for layer in new for a in layer.values()]
    leaves += [a for slot in new_state.values() if isinstance(slot, list) for layer in slot for a in layer.values()]
    assert all(a.dtype == case.dtype for a in leaves)
    assert not np.array_equal(portnn.to_numpy(new[0]["weight"]), before[0]["weight"])


@pytest.mark.parametrize("name", MAKERS)
def test_a_schedule_rate_keeps_float32(case, name: str) -> None:
    """A schedule passes a 0-d float64 rate: float32 parameters stay float32, and the steps equal those at the
    same Python float rate (within float32 rounding of the rate)."""
    xp = case.xp
    if case.dtype_name != "float32" or widest(xp, "float64", None) is None:
        pytest.skip("float32 parameters with a float64 rate (JAX at its defaults has no float64)")
    rate = xp.asarray(0.01, dtype=xp.float64, device=case.device)
    params, _ = _ours(MAKERS[name](), case, steps=5, lr=rate)
    plain, _ = _ours(MAKERS[name](), case, steps=5, lr=0.01)
    for a, b in zip(params, plain, strict=True):
        for n in a:
            assert a[n].dtype == xp.float32
            np.testing.assert_allclose(portnn.to_numpy(a[n]), portnn.to_numpy(b[n]), rtol=0, atol=1e-6)


def test_configs_are_json_and_rebuild() -> None:
    for opt in (portnn.AdamW(0.002, betas=(0.8, 0.9), weight_decay=0.1, decay=["Dense.weight"]),
                portnn.RMSprop(0.02, alpha=0.9, momentum=0.5, centered=True)):
        config = json.loads(json.dumps(opt.config()))
        again = OPTIMIZERS[type(opt).__name__](**config)
        assert again.config() == opt.config()
        assert repr(again) == repr(opt)
    assert portnn.AdamW().config()["decay"] == list(DECAYED)


@pytest.mark.parametrize(("make", "error", "message"), [  # wrong types on purpose: each marked for mypy
    (lambda: portnn.AdamW(0.0), ValueError, r"AdamW: lr must be a finite number > 0, got 0.0"),
    (lambda: portnn.AdamW(betas=(0.9, 1.0)), ValueError, r"AdamW: betas\[1\] must be a finite number in \[0, 1\)"),
    (lambda: portnn.AdamW(betas=0.9), TypeError,  # type: ignore[arg-type]
     r"AdamW: betas must be a pair \(beta1, beta2\)"),
    (lambda: portnn.AdamW(eps=-1e-8), ValueError, r"AdamW: eps must be a finite number > 0"),
    (lambda: portnn.AdamW(weight_decay=-0.1), ValueError, r"AdamW: weight_decay must be a finite number >= 0"),
    (lambda: portnn.AdamW(decay="Dense.weight"), TypeError, r"AdamW: decay must be a list of a 'LayerType.parameter' "
                                                            r"name pattern, got 'Dense.weight'"),
    (lambda: portnn.AdamW(decay=["Dense.weight", 3]), TypeError,  # type: ignore[list-item]
     r"AdamW: decay\[1\] must be a 'LayerType.parameter' name pattern, got 3"),
    (lambda: portnn.RMSprop(lr="fast"), TypeError,  # type: ignore[arg-type]
     r"RMSprop: lr must be a number, got 'fast'"),
    (lambda: portnn.RMSprop(alpha=1.0), ValueError, r"RMSprop: alpha must be a finite number in \[0, 1\), got 1.0"),
    (lambda: portnn.RMSprop(eps=0.0), ValueError, r"RMSprop: eps must be a finite number > 0"),
    (lambda: portnn.RMSprop(momentum=-0.1), ValueError, r"RMSprop: momentum must be a finite number in \[0, 1\)"),
    (lambda: portnn.RMSprop(weight_decay=float("nan")), ValueError, r"RMSprop: weight_decay must be a finite"),
    (lambda: portnn.RMSprop(centered=1), TypeError,  # type: ignore[arg-type]
     r"RMSprop: centered must be True or False, got 1"),
])
def test_bad_hyper_parameters_are_named(make, error, message: str) -> None:
    with pytest.raises(error, match=message):
        make()


def test_hyper_parameters_are_checked_when_set_later_and_are_python_floats() -> None:
    # NumPy scalars are accepted and stored as Python floats (the point; np.float32 is no float subclass)
    opt = portnn.AdamW(np.float64(0.01), betas=(np.float32(0.9), 0.999))  # type: ignore[arg-type]
    assert type(opt.lr) is float
    assert all(type(b) is float for b in opt.betas)
    with pytest.raises(ValueError, match="AdamW: lr must be a finite number > 0"):
        opt.lr = -1.0
    assert opt.lr == 0.01
    rms = portnn.RMSprop()
    with pytest.raises(ValueError, match="RMSprop: alpha"):
        rms.alpha = 2.0
    assert rms.alpha == 0.99


# ---- a small sequence classifier: fit, save, load ------------------------------------------------------------
def _sequences(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(60, 6, 2) sequences; the class says whether channel 0 rises, falls or stays flat over time."""
    rng = np.random.default_rng(seed)
    y = np.arange(60) % 3
    ramp = np.linspace(-1.0, 1.0, 6)
    x = rng.standard_normal((60, 6, 2)) * 0.2
    x[:, :, 0] += np.array([1.0, -1.0, 0.0])[y][:, None] * ramp
    return x, y


@pytest.mark.parametrize("name", MAKERS)
def test_gru_model_fits_saves_and_loads(tmp_path: Path, name: str) -> None:
    X, y = _sequences(0)
    net = portnn.Sequential(portnn.GRU(2, 8, return_sequences=True), portnn.LSTM(8, 8, bidirectional=True),
                            portnn.Dense(16, 3), seed=1)
    opt = MAKERS[name]().bind(net.layers)  # what the trainer will do once per fit
    history = net.fit(X, y, loss=portnn.SoftmaxCrossEntropy(), optimizer=opt, epochs=8, batch_size=20, seed=2)
    assert history[-1] < 0.7 * history[0]
    path = tmp_path / "gru.npz"
    portnn.save(net, path)
    back = portnn.load(path)
    assert repr(back) == repr(net)
    assert back.optimizer is not None
    assert back.optimizer.config() == opt.config()
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)
    np.testing.assert_array_equal(portnn.to_numpy(back.predict(X)), portnn.to_numpy(net.predict(X)))


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`:UserWarning")  # array-api-compat
def test_adamw_update_traces_as_one_graph_under_torch_compile() -> None:
    """The update constructs nothing and matches no name patterns while traced (both are done in ``bind``): Dynamo
    with fullgraph=True traces it whole (it broke on Checked.__setattr__ and on fnmatch before)."""
    torch = pytest.importorskip("torch")
    layers = [portnn.Dense(3, 2), portnn.LayerNorm(2)]
    opt = portnn.AdamW(0.1, weight_decay=0.5).bind(layers)
    params = [{k: torch.tensor(v) for k, v in layer.init(np.random.default_rng(0)).items()} for layer in layers]
    grads = [{k: torch.ones_like(v) for k, v in layer.items()} for layer in params]
    state = opt.init_state(params, array_api_compat.array_namespace(params[0]["weight"]), "cpu")
    eager = opt.update(params, grads, state)
    traced = torch.compile(opt.update, backend="eager", fullgraph=True)(params, grads, state)
    for a, b in zip(eager[0], traced[0], strict=True):
        for k in a:
            assert torch.equal(a[k], b[k]), k
    opt.decay = ("LayerNorm.weight",)  # new patterns are matched again at once
    assert [sorted(k for k, v in layer.items() if v) for layer in opt._decayed_names] == [[], ["weight"]]
