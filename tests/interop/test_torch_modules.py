"""to_torch / from_torch: every example recipe and every supported layer computes the same in torch as in portnn,
round trips are bit-identical, torch-trained models import exactly, and anything else is refused by name."""

from __future__ import annotations

import pickle
import subprocess
import sys
from functools import cache
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from portnn import nn as pnn  # noqa: E402
from portnn.data import recipes  # noqa: E402
from portnn.interop import torch_modules  # noqa: E402
from portnn.interop.torch_modules import from_torch, to_torch  # noqa: E402
from portnn.nn.layer import Context, Layer  # noqa: E402
from portnn.optim import Adam  # noqa: E402
from portnn.train.model import Sequential  # noqa: E402

DTYPES = ["float32", "float64"]
TOL = {"float32": 1e-5, "float64": 1e-12}
BATCHES = (1, 7, 64)


@cache
def recipe_data(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A recipe's training data, loaded once (the digits recipes read scikit-learn's set)."""
    X, y = recipes.get(name).data()
    return np.asarray(X), np.asarray(y)


def inputs(X: np.ndarray, n: int, dtype: str, seed: int = 0) -> np.ndarray:
    """n rows like the data's (rows cycled, plus noise so no two are equal) in ``dtype``."""
    rows = X[np.arange(n) % len(X)].astype(np.float64)
    return (rows + 0.1 * np.random.default_rng(seed).standard_normal(rows.shape)).astype(dtype)


def changed(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> bool:
    """Whether training moved any entry of the state dict (the checks are vacuous on untrained weights)."""
    return any(not np.array_equal(before[k], after[k]) for k in before)


@cache
def trained(name: str, dtype: str) -> Sequential:
    """A recipe's model trained 3 steps on NumPy in ``dtype``: weights and BatchNorm statistics off their init."""
    r = recipes.get(name)
    X, y = recipe_data(name)
    net = r.model(1).to("numpy", dtype=dtype)
    start = net.state_dict()
    net.fit(X[:96].astype(dtype), y[:96], loss=r.loss(), optimizer=r.optimizer(r.lr), steps=3,
            batch_size=r.batch_size)
    assert changed(start, net.state_dict())
    return net


def run_torch(module: Any, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    """The same keys, dtypes, shapes and bytes."""
    assert sorted(a) == sorted(b)
    for key in a:
        assert (a[key].dtype, a[key].shape) == (b[key].dtype, b[key].shape), key
        assert a[key].tobytes() == b[key].tobytes(), key


def assert_torch_state_mirrors(net: Sequential, module: Any, dtype: str) -> None:
    """torch's keys are portnn's plus one num_batches_tracked (0) per BatchNorm; values equal, Linear's transposed."""
    ours, theirs = net.state_dict(), module.state_dict()
    counters = {k for k in theirs if k.endswith(".num_batches_tracked")}
    assert set(theirs) - counters == set(ours)
    assert all(int(theirs[k]) == 0 for k in counters)
    linear = {name for name, m in module.named_modules() if type(m) is nn.Linear}
    for key, value in ours.items():
        got = theirs[key].numpy()
        assert got.dtype == np.dtype(dtype), key
        expected = value.T if key.rpartition(".")[0] in linear and key.endswith(".weight") else value
        assert np.array_equal(got, expected.astype(dtype)), key


def settings(config: Any) -> Any:
    """A layer's config without the initialiser names (which torch does not carry and nothing drawn needs)."""
    if isinstance(config, dict):
        return {k: settings(v) for k, v in config.items() if k not in ("init", "bias_init")}
    return [settings(v) for v in config] if isinstance(config, list) else config


def check_mirror(net: Sequential, X: np.ndarray, dtype: str) -> float:
    """to_torch's module, in eval mode, equals predict on batches 1, 7 and 64; returns the largest difference."""
    module = to_torch(net)
    assert not any(m.training for m in module.modules())
    assert_torch_state_mirrors(net, module, dtype)
    worst = 0.0
    for n in BATCHES:
        x = inputs(X, n, dtype, seed=n)
        out, ref = run_torch(module, x), np.asarray(net.predict(x))
        assert out.dtype == ref.dtype == np.dtype(dtype)
        worst = max(worst, float(np.max(np.abs(out - ref))))
    assert worst <= TOL[dtype], f"max |torch - portnn| = {worst:.3e}"
    return worst


def check_round_trip(net: Sequential, X: np.ndarray, dtype: str) -> None:
    """from_torch(to_torch(net)): the same state dict to the byte and the same predictions to the bit."""
    back = from_torch(to_torch(net))
    assert [type(a) for a in back.layers] == [type(b) for b in net.layers]
    assert [settings(a.config()) for a in back.layers] == [settings(b.config()) for b in net.layers]
    assert_same_state(back.state_dict(), net.state_dict())
    x = inputs(X, 7, dtype)
    assert np.array_equal(np.asarray(back.predict(x)), np.asarray(net.predict(x)))


# ---- the example recipes -------------------------------------------------------------------------------------

# the recipes whose torch keys are portnn's (the recurrent and attention layers rename theirs: their models are
# checked in test_torch_sequences.py)
EXPORTED = [name for name in recipes.RECIPES if name not in {"sort-gpt", "adding-gru", "tiny-gru", "tiny-gpt"}]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", EXPORTED)
def test_recipe_module_predicts_as_portnn(name: str, dtype: str) -> None:
    check_mirror(trained(name, dtype), recipe_data(name)[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", EXPORTED)
def test_recipe_round_trip_is_bit_identical(name: str, dtype: str) -> None:
    check_round_trip(trained(name, dtype), recipe_data(name)[0], dtype)


def test_batchnorm_statistics_were_trained_and_are_copied() -> None:
    net = trained("resnet-lines", "float64")
    state = net.state_dict()
    assert np.any(state["1.running_mean"] != 0.0)
    assert np.any(state["3.1.running_var"] != 1.0)
    module: Any = to_torch(net)  # a torch.nn.Sequential, indexed into
    assert np.array_equal(module[3][1].running_var.numpy(), state["3.1.running_var"])
    assert isinstance(module[3], torch_modules.Residual)
    assert isinstance(module[3], nn.Module)


# ---- every supported layer -----------------------------------------------------------------------------------

def model_1d(dtype: str) -> Sequential:
    """(N, 3, 10) -> (N, 3): Conv1D, BatchNorm1d (3-D and 2-D, affine and not), nested Residual, LayerNorm over two
    axes, GlobalAvgPool1D, Flatten, LeakyReLU, SiLU, Tanh, Softplus, GELU, Dropout, Dense without bias, Softmax."""
    return Sequential(
        pnn.Conv1D(3, 6, 3, padding=1), pnn.BatchNorm1d(6), pnn.LeakyReLU(0.2),
        pnn.Residual(pnn.Conv1D(6, 6, 3, padding=1, bias=False), pnn.BatchNorm1d(6, momentum=0.3), pnn.SiLU(),
                     pnn.Residual(pnn.Conv1D(6, 6, 1), pnn.Tanh())),
        pnn.Conv1D(6, 4, 3, stride=2), pnn.LayerNorm([4, 4], eps=1e-4), pnn.Softplus(2.0, 5.0),  # L: 10 -> 4
        pnn.GlobalAvgPool1D(), pnn.Flatten(), pnn.Dense(4, 8), pnn.BatchNorm1d(8, eps=1e-3, affine=False),
        pnn.GELU(), pnn.Dropout(0.3), pnn.Dense(8, 3, bias=False), pnn.Softmax(), seed=3, dtype=dtype)


def model_2d(dtype: str) -> Sequential:
    """(N, 2, 9, 9) -> (N, 2): strided/padded Conv2D, ELU, overlapping AvgPool2D, nested Residual with BatchNorm2d,
    MaxPool2D with a non-square stride, LayerNorm over (H, W), a (1, 2) kernel, Identity, GlobalAvgPool2D,
    LayerNorm without affine (a large eps: float32 rounding is not amplified by a tiny spread), Sigmoid."""
    return Sequential(
        pnn.Conv2D(2, 4, 3, stride=2, padding=1), pnn.ELU(0.5), pnn.AvgPool2D(2, stride=1),  # 9 -> 5 -> 4
        pnn.Residual(pnn.Conv2D(4, 4, 3, padding=1), pnn.BatchNorm2d(4), pnn.ReLU(),
                     pnn.Residual(pnn.Conv2D(4, 4, 1, bias=False), pnn.Sigmoid())),
        pnn.MaxPool2D(2, stride=(2, 1)), pnn.LayerNorm([2, 3]),  # (2, 3)
        pnn.Conv2D(4, 6, (1, 2)), pnn.Identity(), pnn.BatchNorm2d(6, eps=1e-3, momentum=0.5),  # (2, 2)
        pnn.GlobalAvgPool2D(), pnn.Dense(6, 5), pnn.LayerNorm(5, eps=0.1, affine=False), pnn.Tanh(), pnn.Dense(5, 2),
        seed=4, dtype=dtype)


SHAPES = {"1d": (model_1d, (3, 10), 3), "2d": (model_2d, (2, 9, 9), 2)}


@cache
def trained_all(kind: str, dtype: str) -> tuple[Sequential, np.ndarray]:
    """One of the every-layer models trained 4 Adam steps on random targets (MSE), and its inputs."""
    make, shape, outputs = SHAPES[kind]
    rng = np.random.default_rng(7)
    X = rng.standard_normal((48, *shape)).astype(dtype)
    y = rng.uniform(size=(48, outputs)).astype(dtype)
    net = make(dtype)
    start = net.state_dict()
    net.fit(X, y, loss=pnn.MSE(), optimizer=Adam(0.05), steps=4, batch_size=16)
    assert changed(start, net.state_dict())
    return net, X


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(SHAPES))
def test_every_layer_predicts_as_portnn_and_round_trips(kind: str, dtype: str) -> None:
    net, X = trained_all(kind, dtype)
    check_mirror(net, X, dtype)
    check_round_trip(net, X, dtype)


# every converter of the table is tested: tests/interop/test_torch_sequences.py::test_every_converter_is_tested


def test_torch_modules_carry_the_settings() -> None:
    m1: Any = to_torch(model_1d("float64"))  # torch.nn.Sequentials, indexed into
    m2: Any = to_torch(model_2d("float64"))
    assert m1[2].negative_slope == 0.2
    assert m1[6].beta == 2.0
    assert m1[6].threshold == 5.0
    assert m1[11].approximate == "tanh"
    assert m1[12].p == 0.3
    assert m1[14].dim == -1
    assert m1[13].bias is None
    assert m1[10].weight is None
    assert m1[10].eps == 1e-3
    assert m1[5].normalized_shape == (4, 4)
    assert m1[5].eps == 1e-4
    assert isinstance(m1[3][3], torch_modules.Residual)  # nested
    assert (m2[0].stride, m2[0].padding, m2[1].alpha) == ((2, 2), (1, 1), 0.5)
    assert isinstance(m2[2], nn.AvgPool2d)
    assert (m2[2].kernel_size, m2[2].stride) == ((2, 2), (1, 1))
    assert (m2[4].kernel_size, m2[4].stride) == ((2, 2), (2, 1))
    assert m2[8].momentum == 0.5
    assert [type(m) for m in m2[9]] == [nn.AdaptiveAvgPool2d, nn.Flatten]


# ---- state dict keys and copies ------------------------------------------------------------------------------

def test_torch_load_state_dict_takes_portnn_keys_except_the_transposed_linear() -> None:
    """The keys are equal: torch's load_state_dict of portnn's arrays (Linear weights transposed) matches them all,
    filling BatchNorm's num_batches_tracked itself; untransposed, it names the size mismatch."""
    net = trained("resnet-lines", "float32")
    fresh = to_torch(recipes.get("resnet-lines").model(5).to("numpy", dtype="float32"))
    state = {k: torch.from_numpy(v.T.copy() if k == "7.weight" else v) for k, v in net.state_dict().items()}
    result = fresh.load_state_dict(state, strict=True)
    assert not result.missing_keys
    assert not result.unexpected_keys
    x = inputs(recipe_data("resnet-lines")[0], 7, "float32")
    assert np.array_equal(run_torch(fresh, x), run_torch(to_torch(net), x))
    with pytest.raises(RuntimeError, match=r"size mismatch for 7\.weight"):
        fresh.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})


def test_nothing_is_shared_and_no_torch_random_numbers_are_drawn() -> None:
    net = trained("mlp", "float64")
    before = net.state_dict()
    rng_state = torch.random.get_rng_state()
    module = to_torch(net)
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    back = from_torch(module)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    assert_same_state(net.state_dict(), before)
    assert_same_state(back.state_dict(), before)


def test_dtype_override() -> None:
    net = trained("digits-cnn", "float32")
    module = to_torch(net, dtype=torch.float64)
    assert {p.dtype for p in module.parameters()} == {torch.float64}
    x = inputs(recipe_data("digits-cnn")[0], 7, "float64")
    assert np.max(np.abs(run_torch(module, x) - np.asarray(net.predict(x)))) <= 1e-5
    back = from_torch(module, dtype="float32")
    assert back.dtype == "float32"
    assert_same_state(back.state_dict(), net.state_dict())  # float32 -> float64 -> float32 is exact
    assert from_torch(module).dtype == "float64"
    unplaced: Any = to_torch(recipes.get("mlp").model(0))
    assert unplaced[0].weight.dtype == torch.float64  # unplaced: host float64
    with pytest.raises(ValueError, match=r"dtype must be 'float32' or 'float64'.*int32"):
        to_torch(net, dtype="int32")


def test_a_half_precision_module_needs_a_dtype() -> None:
    module = nn.Sequential(nn.Linear(3, 2)).half()
    with pytest.raises(ValueError, match=r"float16 tensors.*dtype='float32'"):
        from_torch(module)
    net = from_torch(module, dtype="float32")
    assert net.state_dict()["0.weight"].dtype == np.float32
    assert np.array_equal(net.state_dict()["0.weight"], module[0].weight.detach().float().numpy().T)


def test_the_residual_module_pickles() -> None:
    net = trained("digits-resnet", "float32")
    module = to_torch(net)
    again = pickle.loads(pickle.dumps(module))
    assert type(again[3]) is torch_modules.Residual
    x = inputs(recipe_data("digits-resnet")[0], 7, "float32")
    assert np.array_equal(run_torch(again, x), run_torch(module, x))


# ---- models built and trained in torch -----------------------------------------------------------------------

def torch_cnn() -> Any:
    """An idiomatic torch CNN: 'same' padding, a residual block whose body is a nested nn.Sequential, adaptive
    average pooling then Flatten, a bias-free Linear and Softmax(dim=1)."""
    Residual = torch_modules.Residual
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding="same"), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
        Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)), nn.SiLU()),
        nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding="valid"), nn.AvgPool2d(2, count_include_pad=False),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(6, 5, bias=False), nn.GELU(approximate="tanh"),
        nn.Sequential(nn.Dropout(0.1), nn.Linear(5, 3)))


def torch_mlp() -> Any:
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.LayerNorm(16), nn.Dropout(0.2), nn.Linear(16, 8),
                         nn.BatchNorm1d(8), nn.ELU(), nn.Linear(8, 3), nn.Softmax(dim=1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("make", "shape"), [(torch_cnn, (1, 8, 8)), (torch_mlp, (4,))], ids=["cnn", "mlp"])
def test_a_model_trained_in_torch_imports_exactly(make: Any, shape: tuple[int, ...], dtype: str) -> None:
    torch.manual_seed(0)
    module = make().to(getattr(torch, dtype))
    rng = np.random.default_rng(1)
    X = torch.from_numpy(rng.standard_normal((32, *shape)).astype(dtype))
    target = torch.from_numpy(rng.integers(0, 3, size=32))
    opt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    module.train()
    for step in range(5):
        rows = slice(8 * (step % 4), 8 * (step % 4) + 8)
        opt.zero_grad()
        nn.functional.cross_entropy(module(X[rows]), target[rows]).backward()
        opt.step()
    norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    assert norms
    assert all(int(m.num_batches_tracked) == 5 for m in norms)
    module.eval()
    net = from_torch(module, seed=2)
    assert net.dtype == dtype
    assert net.seed == 2
    worst = 0.0
    for n in BATCHES:
        x = rng.standard_normal((n, *shape)).astype(dtype)
        worst = max(worst, float(np.max(np.abs(np.asarray(net.predict(x)) - run_torch(module, x)))))
    assert worst <= TOL[dtype], f"max |portnn - torch| = {worst:.3e}"


def test_imported_layers_have_the_torch_settings() -> None:
    net = from_torch(torch_cnn())
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["Conv2D", "BatchNorm2d", "ReLU", "Residual", "MaxPool2D", "Conv2D", "AvgPool2D",
                     "GlobalAvgPool2D", "Dense", "GELU", "Dropout", "Dense"]  # the nested Sequential spliced in
    conv, conv2, block, dense, dropout = (net.layers[i] for i in (0, 5, 3, 8, 10))
    assert isinstance(conv, pnn.Conv2D)
    assert isinstance(conv2, pnn.Conv2D)
    assert isinstance(block, pnn.Residual)
    assert isinstance(dense, pnn.Dense)
    assert isinstance(dropout, pnn.Dropout)
    assert conv.padding == (1, 1)
    assert conv2.padding == (0, 0)
    assert [type(inner).__name__ for inner in block.layers] == ["Conv2D", "BatchNorm2d", "SiLU"]
    assert dense.bias is False
    assert dropout.p == 0.1
    assert "11.weight" in net.state_dict()
    assert "3.0.weight" in net.state_dict()
    single = from_torch(nn.Linear(3, 2))  # a lone module is a one-layer model
    assert [type(layer) for layer in single.layers] == [pnn.Dense]


# ---- what is refused ------------------------------------------------------------------------------------------

class _Twice(Layer):
    """A user-defined layer: y = 2x (a leading underscore keeps it out of the layer registry)."""

    def forward(self, params: dict[str, Any], x: Any, ctx: Context) -> tuple[Any, Any]:
        return 2.0 * x, None


def test_to_torch_names_the_first_unsupported_layer() -> None:
    net = Sequential(pnn.Dense(2, 2), pnn.Residual(pnn.ReLU(), _Twice()), _Twice())
    with pytest.raises(TypeError, match=r"layer 1\.1 \(_Twice\(\)\) has no torch equivalent; supported: AvgPool2D"):
        to_torch(net)
    with pytest.raises(TypeError, match="must be a portnn Sequential, got Module"):
        to_torch(nn.Module())


class _Skip(pnn.Residual):
    """A subclass of a supported layer (may compute something else): refused, not guessed."""


def test_to_torch_refuses_a_subclass_of_a_supported_layer() -> None:
    with pytest.raises(TypeError, match=r"layer 1 \(Residual\(ReLU\(\)\)\) has no torch equivalent"):
        to_torch(Sequential(pnn.Dense(2, 2), _Skip(pnn.ReLU())))
    with pytest.raises(TypeError, match=r"layer 1\.0 \(Residual\(Tanh\(\)\)\) has no torch equivalent"):
        to_torch(Sequential(pnn.Dense(2, 2), pnn.Residual(_Skip(pnn.Tanh()))))


def test_from_torch_names_the_first_unsupported_module() -> None:
    with pytest.raises(TypeError, match=r"module 1 \(torch\.nn\.modules\.rnn\.LSTM\) has no portnn equivalent"):
        from_torch(nn.Sequential(nn.Linear(2, 3), nn.LSTM(3, 3), nn.GRU(3, 3)))
    nested = nn.Sequential(nn.Linear(2, 3), torch_modules.Residual(nn.ReLU(), nn.Sequential(nn.Tanh(), nn.RNN(3, 3))))
    with pytest.raises(TypeError, match=r"module 1\.1\.1 \(torch\.nn\.modules\.rnn\.RNN\)"):
        from_torch(nested)

    class Custom(nn.Sequential):  # type: ignore[name-defined]  # a subclass may compute something else: refused
        pass

    with pytest.raises(TypeError, match=r"module <root> \(.*Custom\) has no portnn equivalent"):
        from_torch(Custom(nn.ReLU()))
    with pytest.raises(TypeError, match=r"must be a torch\.nn\.Module, got Sequential"):
        # the wrong type is the point (unused-ignore: without torch installed, mypy sees from_torch take Any)
        from_torch(Sequential(pnn.ReLU()))  # type: ignore[arg-type, unused-ignore]


REFUSED = [
    (lambda: nn.Conv2d(1, 2, 3, dilation=2), "dilation=(2, 2)"),
    (lambda: nn.Conv2d(2, 2, 3, groups=2), "groups=2"),
    (lambda: nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), "padding_mode='reflect'"),
    (lambda: nn.Conv2d(1, 2, 2, padding="same"), "padding='same' with an even kernel"),
    (lambda: nn.Conv1d(1, 2, 3, dilation=3), "dilation=(3,)"),
    (lambda: nn.MaxPool2d(2, padding=1), "padding=1"),
    (lambda: nn.MaxPool2d(2, ceil_mode=True), "ceil_mode=True"),
    (lambda: nn.MaxPool2d(2, dilation=2), "dilation=2"),
    (lambda: nn.MaxPool2d(2, return_indices=True), "return_indices=True"),
    (lambda: nn.AvgPool2d(3, padding=1), "padding=1"),
    (lambda: nn.AvgPool2d(2, divisor_override=3), "divisor_override=3"),
    (lambda: nn.BatchNorm2d(2, track_running_stats=False), "track_running_stats=False"),
    (lambda: nn.BatchNorm1d(2, momentum=None), "momentum=None"),
    (lambda: nn.BatchNorm2d(2, bias=False), "bias=False"),
    (lambda: nn.LayerNorm(4, bias=False), "bias=False"),
    (lambda: nn.GELU(), "approximate='none'"),
    (lambda: nn.Flatten(0), "start_dim=0, end_dim=-1"),
    (lambda: nn.AdaptiveAvgPool2d(2), "adaptive pooling not followed by Flatten"),
    (lambda: nn.LeakyReLU(1.5), "alpha must be a finite number in"),  # portnn's own check, with the module named
    (lambda: nn.Dropout(1.0), "p must be a finite number in"),
]


@pytest.mark.parametrize(("make", "setting"), REFUSED, ids=[s for _, s in REFUSED])
def test_unsupported_settings_are_named(make: Any, setting: str) -> None:
    module = make()
    with pytest.raises(ValueError, match=r"from_torch: module 1\.0 \(") as info:
        from_torch(nn.Sequential(nn.Identity(), torch_modules.Residual(module)))
    assert setting in str(info.value)
    assert type(module).__name__ in str(info.value)


def test_softmax_axis_is_checked_against_the_known_rank() -> None:
    assert isinstance(from_torch(nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=1))).layers[1], pnn.Softmax)
    with pytest.raises(ValueError, match="dim=1 on rank-4 input"):
        from_torch(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Softmax(dim=1)))
    with pytest.raises(ValueError, match=r"module 0 .*dim=1 is not supported"):
        from_torch(nn.Sequential(nn.Softmax(dim=1)))  # rank unknown: only dim=-1 is certainly the last axis


def test_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ImportError, match="pip install torch"):
        to_torch(Sequential(pnn.ReLU()))
    with pytest.raises(ImportError, match="pip install torch"):
        from_torch(object())  # type: ignore[arg-type, unused-ignore]  # as above: the wrong type is the point


def test_portnn_imports_the_module_without_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "from portnn.interop import torch_modules\n"
            "try:\n    torch_modules.Residual\nexcept ImportError as e:\n    print('refused:', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout
    assert "pip install torch" in done.stdout
