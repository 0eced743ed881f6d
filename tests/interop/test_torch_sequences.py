"""to_torch / from_torch for the sequence layers (issue 21): Embedding, PositionalEmbedding, GRU and LSTM (both
directions, return_sequences both ways), MultiHeadAttention (causal or not, with and without biases), LastStep and
GlobalAvgPoolTime, alone and in a small GPT, a GRU classifier and a bidirectional LSTM: torch computes what predict
computes, round trips are byte-identical, torch-built and torch-trained modules import exactly, and the torch
settings portnn cannot reproduce are refused by name."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from portnn import nn as pnn  # noqa: E402
from portnn.interop import torch_modules as tm  # noqa: E402
from portnn.interop.torch_modules import CONVERTERS, from_torch, to_torch  # noqa: E402
from portnn.train.model import Sequential  # noqa: E402

from .sequence_models import (  # noqa: E402
    FEATURES,
    LAYERS,
    MODELS,
    STEPS,
    VOCAB,
    bilstm,
    floats,
    gpt,
    ids,
    one_layer,
    sample,
    trained,
)
from .test_torch_modules import BATCHES, DTYPES, SHAPES, TOL, assert_same_state, run_torch, settings  # noqa: E402

# portnn name -> torch's, written out here rather than read from the table under test
RENAMES = {"weight_ih": "weight_ih_l0", "weight_hh": "weight_hh_l0", "bias_ih": "bias_ih_l0", "bias_hh": "bias_hh_l0",
           "weight_ih_reverse": "weight_ih_l0_reverse", "weight_hh_reverse": "weight_hh_l0_reverse",
           "bias_ih_reverse": "bias_ih_l0_reverse", "bias_hh_reverse": "bias_hh_l0_reverse",
           "out_proj_weight": "out_proj.weight", "out_proj_bias": "out_proj.bias"}


# ---- portnn -> torch -> portnn -----------------------------------------------------------------------------------

def assert_torch_state_mirrors(net: Sequential, module: Any, dtype: str) -> None:
    """torch's keys are portnn's with the recurrent and attention renames; values equal, Linear weights transposed."""
    ours, theirs = net.state_dict(), module.state_dict()
    expected = {}
    for key in ours:
        path, _, name = key.rpartition(".")
        expected[key] = f"{path}.{RENAMES.get(name, name)}" if path else RENAMES.get(name, name)
    assert set(theirs) == set(expected.values())
    linear = {name for name, m in module.named_modules() if type(m) is nn.Linear}
    for key, value in ours.items():
        got = theirs[expected[key]].numpy()
        assert got.dtype == np.dtype(dtype), key
        assert np.array_equal(got, value.T if key.rpartition(".")[0] in linear else value), key


def check_mirror(net: Sequential, dtype: str) -> float:
    """to_torch's module, in eval mode, equals predict on batches 1, 7 and 64; returns the largest difference."""
    module = to_torch(net)
    assert not any(m.training for m in module.modules())
    assert_torch_state_mirrors(net, module, dtype)
    worst = 0.0
    for n in BATCHES:
        x = sample(net, n, n, dtype)
        out, ref = run_torch(module, x), np.asarray(net.predict(x))
        assert out.dtype == ref.dtype == np.dtype(dtype)
        assert out.shape == ref.shape
        worst = max(worst, float(np.max(np.abs(out - ref))))
    assert worst <= TOL[dtype], f"max |torch - portnn| = {worst:.3e}"
    return worst


def check_round_trip(net: Sequential, dtype: str) -> None:
    """from_torch(to_torch(net)): the same layers and settings, state dict to the byte, predictions to the bit."""
    back = from_torch(to_torch(net))
    assert back.dtype == (dtype if net.state_dict() else None)  # no tensor, no dtype: predict follows the input's
    assert [type(a) for a in back.layers] == [type(b) for b in net.layers]
    assert [settings(a.config()) for a in back.layers] == [settings(b.config()) for b in net.layers]
    assert_same_state(back.state_dict(), net.state_dict())
    x = sample(net, 7, 0, dtype)
    assert np.array_equal(np.asarray(back.predict(x)), np.asarray(net.predict(x)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(LAYERS))
def test_each_sequence_layer_predicts_as_portnn_and_round_trips(name: str, dtype: str) -> None:
    net = one_layer(name, dtype)
    check_mirror(net, dtype)
    check_round_trip(net, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(MODELS))
def test_sequence_models_predict_as_portnn_and_round_trip(name: str, dtype: str) -> None:
    net = trained(name, dtype)
    check_mirror(net, dtype)
    check_round_trip(net, dtype)


def test_torch_modules_carry_the_settings() -> None:
    module: Any = to_torch(gpt("float64"))  # torch.nn.Sequentials, indexed into
    assert type(module[0]) is nn.Embedding
    assert (module[1].max_length, module[1].dim, module[1].std) == (STEPS + 2, 8, 0.02)
    attention = module[2][1]
    assert type(attention) is tm.MultiHeadAttention
    assert isinstance(attention, nn.MultiheadAttention)
    assert (attention.embed_dim, attention.num_heads, attention.causal, attention.dropout) == (8, 2, True, 0.1)
    assert attention.batch_first
    lstm: Any = to_torch(bilstm("float64"))
    assert isinstance(lstm[0], nn.LSTM)
    assert (lstm[0].bidirectional, lstm[0].return_sequences, lstm[0].batch_first, lstm[0].num_layers) == (
        True, True, True, 1)
    assert not lstm[3].return_sequences
    no_bias: Any = to_torch(one_layer("attention-no-bias-dropout", "float64"))
    assert no_bias[0].in_proj_bias is None


def test_no_torch_random_numbers_are_drawn_and_the_module_pickles() -> None:
    state = torch.random.get_rng_state()
    for name in MODELS:
        to_torch(trained(name, "float64"))
    for name in LAYERS:
        to_torch(one_layer(name, "float64"))
    assert torch.equal(torch.random.get_rng_state(), state)
    module = to_torch(trained("gpt", "float32"))
    again = pickle.loads(pickle.dumps(module))
    assert type(again[2][1]) is tm.MultiHeadAttention
    x = torch.from_numpy(ids(7, 3))
    with torch.no_grad():
        assert torch.equal(again(x), module(x))


# ---- modules built and trained in torch ---------------------------------------------------------------------------

def torch_layer(name: str, dtype: Any) -> tuple[Any, Any]:
    """(torch module read as portnn's layer, what torch itself computes) in ``dtype``: a plain nn.GRU/nn.LSTM/
    nn.MultiheadAttention with torch's initialisation loaded into this package's module, against the plain module's
    own output; nn.Embedding and the small modules against themselves or the expression they stand for."""
    layer = LAYERS[name]()
    if isinstance(layer, pnn.GRU | pnn.LSTM):
        kind = type(layer).__name__
        plain = getattr(nn, kind)(FEATURES, 3, batch_first=True, bidirectional=layer.bidirectional, dtype=dtype)
        wrapped = getattr(tm, kind)(FEATURES, 3, bidirectional=layer.bidirectional,
                                    return_sequences=layer.return_sequences, dtype=dtype)
        wrapped.load_state_dict(plain.state_dict())

        def own(x: Any) -> Any:
            out, state = plain(x)
            h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
            return out if layer.return_sequences else torch.cat(list(h_n), dim=1)

        return wrapped, own
    if isinstance(layer, pnn.MultiHeadAttention):
        plain = nn.MultiheadAttention(FEATURES, layer.num_heads, dropout=layer.dropout, bias=layer.bias,
                                      batch_first=True, dtype=dtype)
        wrapped = tm.MultiHeadAttention(FEATURES, layer.num_heads, causal=layer.causal, dropout=layer.dropout,
                                        bias=layer.bias, dtype=dtype)
        wrapped.load_state_dict(plain.state_dict())
        mask = torch.triu(torch.ones(STEPS, STEPS, dtype=torch.bool), diagonal=1) if layer.causal else None
        return wrapped, lambda x: plain.eval()(x, x, x, attn_mask=mask, need_weights=False)[0]
    if name == "embedding":
        table = nn.Embedding(VOCAB, FEATURES, dtype=dtype)
        return table, table
    if name == "positions":
        positions = tm.PositionalEmbedding(STEPS + 3, FEATURES, std=0.5, dtype=dtype)
        return positions, lambda x: x + positions.weight[:STEPS]
    return (tm.LastStep(), lambda x: x[:, -1]) if name == "last-step" else (tm.GlobalAvgPoolTime(),
                                                                             lambda x: x.mean(dim=1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(LAYERS))
def test_a_torch_built_layer_imports_and_predicts_as_torch(name: str, dtype: str) -> None:
    torch.manual_seed(0)
    module, own = torch_layer(name, getattr(torch, dtype))
    module.eval()
    target = one_layer(name, dtype)
    net = from_torch(module, seed=4)
    assert [type(layer) for layer in net.layers] == [type(target.layers[0])]
    assert settings(net.layers[0].config()) == settings(target.layers[0].config())
    assert net.dtype == (dtype if list(module.parameters()) else None)
    worst = 0.0
    for n in BATCHES:
        x = sample(target, n, n, dtype)
        with torch.no_grad():
            theirs = own(torch.from_numpy(x)).numpy()
        assert np.array_equal(run_torch(module, x), theirs)  # the module computes what plain torch does
        worst = max(worst, float(np.max(np.abs(np.asarray(net.predict(x)) - theirs))))
    assert worst <= TOL[dtype], f"max |portnn - torch| = {worst:.3e}"


def torch_gpt() -> Any:
    Residual = tm.Residual
    return nn.Sequential(
        nn.Embedding(VOCAB, 8), tm.PositionalEmbedding(STEPS + 2, 8),
        Residual(nn.LayerNorm(8), tm.MultiHeadAttention(8, 2, causal=True, dropout=0.1)),
        Residual(nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 16)), nn.GELU(approximate="tanh"), nn.Linear(16, 8)),
        nn.LayerNorm(8), nn.Linear(8, VOCAB))


def torch_gru_classifier() -> Any:
    return nn.Sequential(nn.Embedding(VOCAB, 6), tm.GRU(6, 5), nn.Dropout(0.1), nn.Linear(5, 3))


def torch_bilstm() -> Any:
    return nn.Sequential(tm.LSTM(FEATURES, 5, bidirectional=True, return_sequences=True), nn.Linear(10, 6), nn.Tanh(),
                         tm.LSTM(6, 3, bidirectional=True), nn.Linear(6, 2), nn.Softmax(dim=1))


TORCH_MODELS = {"gpt": (torch_gpt, "tokens"), "gru-classifier": (torch_gru_classifier, "tokens"),
                "bilstm": (torch_bilstm, "floats")}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(TORCH_MODELS))
def test_a_model_trained_in_torch_imports_exactly(name: str, dtype: str) -> None:
    make, kind = TORCH_MODELS[name]
    torch.manual_seed(0)
    module = make().to(getattr(torch, dtype))
    X = torch.from_numpy(ids(32, 1) if kind == "tokens" else floats(32, 1, dtype))
    start = {k: v.clone() for k, v in module.state_dict().items()}
    opt = torch.optim.Adam(module.parameters(), lr=0.01)
    module.train()
    for step in range(5):
        rows = slice(8 * (step % 4), 8 * (step % 4) + 8)
        opt.zero_grad()
        out = module(X[rows])
        logits = out.reshape(-1, out.shape[-1])
        labels = torch.zeros(logits.shape[0], dtype=torch.long)
        nn.functional.cross_entropy(logits, labels).backward()
        opt.step()
    assert all(not torch.equal(start[k], v) for k, v in module.state_dict().items())
    module.eval()
    net = from_torch(module, seed=2)
    assert net.dtype == dtype
    worst = 0.0
    for n in BATCHES:
        x = ids(n, n) if kind == "tokens" else floats(n, n, dtype)
        worst = max(worst, float(np.max(np.abs(np.asarray(net.predict(x)) - run_torch(module, x)))))
    assert worst <= TOL[dtype], f"max |portnn - torch| = {worst:.3e}"


# ---- what is refused ----------------------------------------------------------------------------------------------

REFUSED = [
    (lambda: nn.Embedding(5, 3, padding_idx=0), "padding_idx=0"),
    (lambda: nn.Embedding(5, 3, max_norm=1.0), "max_norm=1.0"),
    (lambda: nn.Embedding(5, 3, scale_grad_by_freq=True), "scale_grad_by_freq=True"),
    (lambda: tm.GRU(3, 3, num_layers=2), "num_layers=2"),
    (lambda: tm.LSTM(3, 3, bias=False), "bias=False"),
    (lambda: tm.LSTM(3, 4, proj_size=2), "proj_size=2"),
    (lambda: tm.MultiHeadAttention(4, 2, add_bias_kv=True), "add_bias_kv=True"),
    (lambda: tm.MultiHeadAttention(4, 2, add_zero_attn=True), "add_zero_attn=True"),
    (lambda: tm.MultiHeadAttention(4, 2, kdim=3, vdim=3), "kdim=3, vdim=3"),
    (lambda: tm.PositionalEmbedding(4, 3, std=0.0), "std must be"),  # portnn's own check, the module named
]


@pytest.mark.parametrize(("make", "setting"), REFUSED, ids=[s for _, s in REFUSED])
def test_unsupported_settings_are_named(make: Any, setting: str) -> None:
    module = make()
    with pytest.raises(ValueError, match=r"from_torch: module 1\.0 \(") as info:
        from_torch(nn.Sequential(nn.Identity(), tm.Residual(module)))
    assert setting in str(info.value)


def test_plain_recurrent_and_attention_modules_point_to_the_layer_modules() -> None:
    for plain, wrapper in ((nn.GRU(3, 3), "GRU"), (nn.LSTM(3, 3), "LSTM"), (nn.MultiheadAttention(4, 2),
                                                                           "MultiHeadAttention")):
        with pytest.raises(TypeError, match=rf"module 1 \(torch\.nn\.modules\.\w+\.{type(plain).__name__}\) has no "
                                            rf"portnn equivalent; torch_modules\.{wrapper} computes it as a layer"):
            from_torch(nn.Sequential(nn.Embedding(4, 3), plain))


def test_softmax_axis_is_checked_after_sequence_layers() -> None:
    assert isinstance(from_torch(nn.Sequential(tm.GRU(3, 4), nn.Softmax(dim=1))).layers[1], pnn.Softmax)
    with pytest.raises(ValueError, match=r"module 1 .*dim=1 on rank-3 input is not supported"):
        from_torch(nn.Sequential(tm.GRU(3, 4, return_sequences=True), nn.Softmax(dim=1)))
    with pytest.raises(ValueError, match=r"dim=1 on rank-3 input"):
        from_torch(nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 2), nn.Softmax(dim=1)))
    assert isinstance(from_torch(nn.Sequential(nn.Embedding(5, 3), nn.Softmax(dim=2))).layers[1], pnn.Softmax)


# ---- the table ----------------------------------------------------------------------------------------------------

def test_every_converter_is_tested() -> None:
    """Every layer type of the table appears in a model these tests convert both ways."""
    covered: set[type] = set()

    def walk(layers: Any) -> None:
        for layer in layers:
            covered.add(type(layer))
            if isinstance(layer, pnn.Residual):
                walk(layer.layers)

    for make, _, _ in SHAPES.values():
        walk(make("float64").layers)
    for make, _ in MODELS.values():
        walk(make("float64").layers)
    walk([make() for make in LAYERS.values()])
    assert covered == set(CONVERTERS)
