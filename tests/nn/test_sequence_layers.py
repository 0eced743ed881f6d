"""The sequence layers (issue 21) against torch on every backend: GRU and LSTM (both directions, return_sequences
both ways), MultiHeadAttention (causal or not, with and without biases, attention dropout), Embedding (repeated ids),
PositionalEmbedding, LastStep, GlobalAvgPoolTime and Dense on 3-D input. Forward, dx and every parameter gradient to
1e-10 in float64, float32 within the backend's tolerance and staying float32, 5 SGD steps equal to torch.optim.SGD,
finite differences below 1e-7, the same dropout mask on every backend (and a data-parallel rank's rows of it),
torch's initialisation, and bad arguments and inputs named."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pytest

import portnn
from portnn import Context, backends, to_numpy
from portnn.nn import threefry
from portnn.testing import gradcheck

torch = pytest.importorskip("torch")
ATOL = 1e-10  # float64 agreement with torch (measured: at most 9e-16 on every backend; float32 at most 7e-7)
LR = 0.1


# ---- torch counterparts: (module or function, {portnn parameter name: torch parameter}) ----------------------------
def _rnn(cls, layer):
    module = cls(layer.input_size, layer.hidden_size, batch_first=True, bidirectional=layer.bidirectional,
                 dtype=torch.float64)
    names = {n: getattr(module, n.replace("_reverse", "_l0_reverse") if n.endswith("_reverse") else n + "_l0")
             for n in layer.param_shapes()}

    def run(x):
        out, state = module(x)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM returns (h_n, c_n)
        if layer.return_sequences:
            return out
        return torch.cat(list(h_n), dim=1)  # (directions, N, H) -> (N, directions * H): torch's h_n

    return run, names


def _attention(layer):
    module = torch.nn.MultiheadAttention(layer.embed_dim, layer.num_heads, batch_first=True, bias=layer.bias,
                                         dtype=torch.float64)
    names = {"in_proj_weight": module.in_proj_weight, "out_proj_weight": module.out_proj.weight}
    if layer.bias:
        names |= {"in_proj_bias": module.in_proj_bias, "out_proj_bias": module.out_proj.bias}

    def run(x):
        t = x.shape[1]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1) if layer.causal else None
        return module(x, x, x, attn_mask=mask, need_weights=False)[0]

    return run, names


def _table(layer, fn):
    weight = torch.nn.Parameter(torch.zeros(layer.param_shapes()["weight"], dtype=torch.float64))
    return (lambda x: fn(x, weight)), {"weight": weight}


def _dense(layer):
    module = torch.nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
    weight_t = torch.nn.Parameter(torch.zeros(layer.in_features, layer.out_features, dtype=torch.float64))
    return (lambda x: torch.nn.functional.linear(x, weight_t.T, module.bias)), {"weight": weight_t,
                                                                               "bias": module.bias}


def torch_twin(layer):
    """(run, {name: torch parameter}) computing what ``layer`` computes, in float64 on the CPU."""
    kind = type(layer).__name__
    if kind in ("GRU", "LSTM"):
        return _rnn(getattr(torch.nn, kind), layer)
    if kind == "MultiHeadAttention":
        return _attention(layer)
    if kind == "Embedding":
        return _table(layer, lambda ids, w: torch.nn.functional.embedding(ids, w))
    if kind == "PositionalEmbedding":
        return _table(layer, lambda x, w: x + w[:x.shape[1]])
    if kind == "Dense":
        return _dense(layer)
    if kind == "LastStep":
        return (lambda x: x[:, -1]), {}
    if kind == "GlobalAvgPoolTime":
        return (lambda x: x.mean(dim=1)), {}
    raise AssertionError(kind)


# every case: (layer factory, input shape, vocabulary size for integer ids or None)
CASES: dict[str, tuple[Callable[[], portnn.Layer], tuple[int, ...], int | None]] = {  # (make, input shape, vocab)
    "gru": (lambda: portnn.GRU(3, 4), (2, 5, 3), None),
    "gru-seq": (lambda: portnn.GRU(3, 4, return_sequences=True), (2, 5, 3), None),
    "gru-bi": (lambda: portnn.GRU(3, 4, bidirectional=True), (2, 5, 3), None),
    "gru-bi-seq": (lambda: portnn.GRU(3, 4, return_sequences=True, bidirectional=True), (2, 5, 3), None),
    "gru-one-step": (lambda: portnn.GRU(2, 3, bidirectional=True), (3, 1, 2), None),
    "lstm": (lambda: portnn.LSTM(3, 4), (2, 5, 3), None),
    "lstm-seq": (lambda: portnn.LSTM(3, 4, return_sequences=True), (2, 5, 3), None),
    "lstm-bi": (lambda: portnn.LSTM(3, 4, bidirectional=True), (2, 5, 3), None),
    "lstm-bi-seq": (lambda: portnn.LSTM(3, 4, return_sequences=True, bidirectional=True), (2, 5, 3), None),
    "attention": (lambda: portnn.MultiHeadAttention(6, 2), (2, 5, 6), None),
    "attention-causal": (lambda: portnn.MultiHeadAttention(6, 3, causal=True), (2, 5, 6), None),
    "attention-causal-nobias": (lambda: portnn.MultiHeadAttention(4, 1, causal=True, bias=False), (3, 4, 4), None),
    "attention-dropout-off-in-inference": (lambda: portnn.MultiHeadAttention(6, 2, dropout=0.3), (2, 5, 6), None),
    "embedding-repeated-ids": (lambda: portnn.Embedding(5, 3), (3, 8), 5),
    "positional": (lambda: portnn.PositionalEmbedding(7, 3), (2, 5, 3), None),
    "positional-full-length": (lambda: portnn.PositionalEmbedding(5, 3), (2, 5, 3), None),
    "last-step": (portnn.LastStep, (2, 5, 3), None),
    "avg-pool-time": (portnn.GlobalAvgPoolTime, (2, 5, 3), None),
    "dense-3d": (lambda: portnn.Dense(3, 4, bias_init="torch_default"), (2, 5, 3), None),
    "dense-4d": (lambda: portnn.Dense(3, 2), (2, 2, 3, 3), None),
}


def _inputs(name: str, rng: np.random.Generator) -> np.ndarray:
    """The input of case ``name``: normal values, or ids in which every id occurs at least twice."""
    _, shape, vocab = CASES[name]
    if vocab is None:
        return rng.standard_normal(shape)
    ids = np.concatenate([np.arange(vocab), np.arange(vocab)])
    return rng.permutation(np.resize(ids, math.prod(shape))).reshape(shape)


def _params(layer, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Initial parameters with the biases moved off zero, so that a wrong bias term would show."""
    params = layer.init(rng)
    return {k: v + 0.1 * rng.standard_normal(v.shape) if "bias" in k else v for k, v in params.items()}


def _ours(layer, params, x, dy, case, ctx: Context | None = None):
    placed = {k: case.asarray(v) for k, v in params.items()}
    ctx = ctx or Context(case.xp, case.device, case.dtype)
    xa = case.asarray(x, dtype=case.ints) if x.dtype.kind == "i" else case.asarray(x)
    y, saved = layer.forward(placed, xa, ctx)
    dx, grads = layer.backward(placed, saved, case.asarray(dy), ctx)
    return y, dx, grads


def _reference(layer, params, x, dy):
    run, tparams = torch_twin(layer)
    with torch.no_grad():
        for k, v in params.items():
            tparams[k].copy_(torch.tensor(v))
    xt = torch.tensor(x) if x.dtype.kind == "i" else torch.tensor(x, requires_grad=True)
    y = run(xt)
    y.backward(torch.tensor(dy))
    return (y.detach().numpy(), None if xt.grad is None else xt.grad.numpy(),
            {k: tparams[k].grad.numpy() for k in params})


def _scaled(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(a - ref) / np.maximum(1.0, np.abs(ref)), initial=0.0))


def _tol(case) -> float:
    """1e-10 in float64; in float32 the backend's float32 tolerance, and for array-api-strict (whose tolerance is
    0: bit-identical to NumPy, checked separately) NumPy's."""
    if case.dtype_name == "float64":
        return ATOL
    return case.tol() or backends.get("numpy").tol("float32")


def _same_as_numpy(case, layer, params, x, dy, got, ctx: Context | None = None) -> None:
    """array-api-strict computes with NumPy: its results must be NumPy's bit for bit (the golden-file rule)."""
    if case.backend.name != "array_api_strict":
        return
    xp, device = backends.load("numpy")
    numpy_case = dataclasses.replace(case, xp=xp, device=device, device_name="cpu")
    numpy_ctx = None if ctx is None else dataclasses.replace(ctx, xp=xp, device=device, dtype=numpy_case.dtype)
    for a, b in zip(_ours(layer, params, x, dy, numpy_case, numpy_ctx), got, strict=True):
        pairs = list(zip(a.values(), b.values(), strict=True)) if isinstance(a, dict) else [(a, b)]
        for u, v in pairs:
            if u is not None:
                np.testing.assert_array_equal(to_numpy(v), to_numpy(u))


@pytest.mark.parametrize("name", CASES)
def test_matches_torch(case, name: str) -> None:
    """Forward, dx and every gradient as torch: 1e-10 in float64; float32 within the backend's tolerance, and
    every output stays in the case's dtype."""
    make, _, _ = CASES[name]
    layer = make()
    rng = np.random.default_rng(11)
    x = _inputs(name, rng)
    params = _params(layer, rng)
    dy = rng.standard_normal(layer.output_shape(x.shape, "test"))
    ref_y, ref_dx, ref_grads = _reference(layer, params, x, dy)
    y, dx, grads = _ours(layer, params, x, dy, case)
    assert list(grads) == list(layer.param_shapes())
    for out in (y, dx, *grads.values()):
        assert out is None or out.dtype == case.dtype
    tol = _tol(case)
    assert y.shape == ref_y.shape
    assert _scaled(to_numpy(y), ref_y) <= tol
    if ref_dx is None:  # integer ids have no gradient
        assert dx is None
    else:
        assert tuple(dx.shape) == x.shape
        assert _scaled(to_numpy(dx), ref_dx) <= tol
    for k, g in grads.items():
        assert _scaled(to_numpy(g), ref_grads[k]) <= tol, k
    _same_as_numpy(case, layer, params, x, dy, (y, dx, grads))


@pytest.mark.parametrize("name", ["gru-bi-seq", "lstm-bi", "attention-causal", "embedding-repeated-ids",
                                  "positional", "dense-3d"])
def test_five_sgd_steps_match_torch(case64, name: str) -> None:
    """L = sum(y * R); five steps of SGD(lr=0.1) here and torch.optim.SGD there end at the same parameters."""
    make, _, _ = CASES[name]
    layer = make()
    rng = np.random.default_rng(12)
    x = _inputs(name, rng)
    params = _params(layer, rng)
    r = rng.standard_normal(layer.output_shape(x.shape, "test"))
    run, tparams = torch_twin(layer)
    with torch.no_grad():
        for k, v in params.items():
            tparams[k].copy_(torch.tensor(v))
    opt = torch.optim.SGD(list(tparams.values()), lr=LR)
    ours = [{k: case64.asarray(v) for k, v in params.items()}]
    sgd, ctx = portnn.SGD(LR), Context(case64.xp, case64.device, case64.dtype, need_dx=False)
    state = sgd.init_state(ours, case64.xp, case64.device)
    xa = case64.asarray(x, dtype=case64.xp.int64) if x.dtype.kind == "i" else case64.asarray(x)
    for _ in range(5):
        opt.zero_grad()
        (run(torch.tensor(x)) * torch.tensor(r)).sum().backward()
        opt.step()
        _, saved = layer.forward(ours[0], xa, ctx)
        _, grads = layer.backward(ours[0], saved, case64.asarray(r), ctx)
        ours, state = sgd.update(ours, [grads], state)
    for k, v in tparams.items():
        assert np.max(np.abs(to_numpy(ours[0][k]) - v.detach().numpy())) <= ATOL, k


def test_gradcheck_embedding_weight(case64) -> None:
    """Central differences of sum(Embedding(ids) * R) in the table, with every id repeated."""
    layer = portnn.Embedding(4, 3)
    rng = np.random.default_rng(15)
    ids = np.array([[0, 1, 1, 3, 0], [3, 3, 2, 1, 0]])
    weight, r = rng.standard_normal((4, 3)), rng.standard_normal((2, 5, 3))
    ctx = Context(case64.xp, case64.device, case64.dtype)
    ids_d, r_d = case64.asarray(ids, dtype=case64.xp.int64), case64.asarray(r)

    def value(inputs):
        out, _ = layer.forward({"weight": case64.asarray(inputs["weight"])}, ids_d, ctx)
        return float(to_numpy(case64.xp.sum(out * r_d)))

    _, saved = layer.forward({"weight": case64.asarray(weight)}, ids_d, ctx)
    _, grads = layer.backward({"weight": case64.asarray(weight)}, saved, r_d, ctx)
    assert gradcheck(value, {"weight": weight}, grads) < 1e-7
    # and exactly the per-id sums: every id's row is the sum of the R rows where it occurs
    expected = np.stack([r[ids == v].sum(axis=0) for v in range(4)])
    np.testing.assert_allclose(to_numpy(grads["weight"]), expected, rtol=0, atol=1e-14)


# ---- attention dropout: one mask everywhere ------------------------------------------------------------------
def _attention_with_mask(layer, params, x, keep, dy):
    """torch reference of attention whose weights are multiplied by the scaled keep-mask ``keep``."""
    e, h = layer.embed_dim, layer.num_heads
    ts = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xt = torch.tensor(x, requires_grad=True)
    n, t, _ = x.shape
    qkv = xt @ ts["in_proj_weight"].T + ts["in_proj_bias"]
    q, k, v = (qkv[..., i * e:(i + 1) * e].reshape(n, t, h, e // h).transpose(1, 2) for i in range(3))
    scores = q @ k.transpose(-1, -2) / math.sqrt(e // h)
    if layer.causal:
        scores = scores.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
    weights = torch.softmax(scores, dim=-1) * torch.tensor(keep)
    out = (weights @ v).transpose(1, 2).reshape(n, t, e) @ ts["out_proj_weight"].T + ts["out_proj_bias"]
    out.backward(torch.tensor(dy))
    return out.detach().numpy(), xt.grad.numpy(), {k: p.grad.numpy() for k, p in ts.items()}


def test_attention_dropout_same_mask_on_every_backend_and_in_backward(case) -> None:
    p, key = 0.3, (5, 2, 1, 7)
    layer = portnn.MultiHeadAttention(6, 2, causal=True, dropout=p)
    rng = np.random.default_rng(16)
    x, params = rng.standard_normal((3, 4, 6)), _params(layer, rng)
    dy = rng.standard_normal(x.shape)
    keep = threefry.keep(threefry.key(*key), (3, 2, 4, 4), p, np, "cpu").astype(np.float64) / (1 - p)
    assert (keep == 0).any()  # something is dropped
    assert (keep > 1).any()  # something is kept (and scaled)
    ref_y, ref_dx, ref_grads = _attention_with_mask(layer, params, x, keep, dy)
    ctx = Context(case.xp, case.device, case.dtype, training=True, key=key)
    y, dx, grads = _ours(layer, params, x, dy, case, ctx)
    _same_as_numpy(case, layer, params, x, dy, (y, dx, grads), ctx)
    tol = _tol(case)
    assert _scaled(to_numpy(y), ref_y) <= tol
    assert _scaled(to_numpy(dx), ref_dx) <= tol
    for k, g in grads.items():
        assert _scaled(to_numpy(g), ref_grads[k]) <= tol, k
    # a different key gives a different mask (the test above could not pass by accident)
    other, _ = layer.forward({k: case.asarray(v) for k, v in params.items()}, case.asarray(x),
                             dataclasses.replace(ctx, key=(5, 2, 1, 8)))
    assert _scaled(to_numpy(other), ref_y) > 1e-3


def test_attention_dropout_rows_of_a_rank_are_the_rows_of_the_batch(numpy64) -> None:
    """A data-parallel rank holding rows [2, 5) of an 6-row batch draws exactly those rows of the batch's mask."""
    layer = portnn.MultiHeadAttention(4, 2, dropout=0.5)
    rng = np.random.default_rng(17)
    x, params = rng.standard_normal((6, 3, 4)), _params(layer, rng)
    ctx = Context(numpy64.xp, numpy64.device, numpy64.dtype, training=True, key=(1, 2, 3, 4))
    whole, _ = layer.forward(params, x, ctx)
    part, _ = layer.forward(params, x[2:5], dataclasses.replace(ctx, rows=(2, 5, 6)))
    np.testing.assert_array_equal(part, whole[2:5])
    assert not np.allclose(layer.forward(params, x[2:5], ctx)[0], whole[2:5])  # without rows: another mask


# ---- initialisation as torch ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [portnn.GRU, portnn.LSTM])
def test_recurrent_layout_and_init_as_torch(cls) -> None:
    layer = cls(30, 400, bidirectional=True)
    module = getattr(torch.nn, cls.__name__)(30, 400, batch_first=True, bidirectional=True)
    torch_names = [n.replace("_l0", "") for n, _ in module.named_parameters()]
    assert list(layer.param_shapes()) == torch_names  # the same names, in torch's order
    assert [layer.param_shapes()[n] for n in torch_names] == [tuple(p.shape) for p in module.parameters()]
    params = layer.init(np.random.default_rng(0))
    bound = 1 / math.sqrt(400)
    for name, value in params.items():
        assert np.all(np.abs(value) <= bound), name
        assert value.max() > 0.95 * bound, name  # spread over the whole range
        assert value.min() < -0.95 * bound, name
    rng, ref = np.random.default_rng(1), np.random.default_rng(1)  # drawn in order, one uniform per parameter
    params = cls(3, 4).init(rng)
    for name, shape in cls(3, 4).param_shapes().items():
        np.testing.assert_array_equal(params[name], ref.uniform(-0.5, 0.5, shape))


def test_attention_init_as_torch() -> None:
    e = 64
    layer = portnn.MultiHeadAttention(e, 4)
    module = torch.nn.MultiheadAttention(e, 4, batch_first=True)
    theirs = {"in_proj_weight": module.in_proj_weight, "in_proj_bias": module.in_proj_bias,
              "out_proj_weight": module.out_proj.weight, "out_proj_bias": module.out_proj.bias}
    assert layer.param_shapes() == {k: tuple(v.shape) for k, v in theirs.items()}
    params = layer.init(np.random.default_rng(0))
    for name, bound in (("in_proj_weight", math.sqrt(6 / (4 * e))), ("out_proj_weight", 1 / math.sqrt(e))):
        mine, torchs = params[name], theirs[name].detach().numpy()
        assert np.all(np.abs(mine) <= bound), name
        assert mine.max() > 0.98 * bound, name
        assert np.all(np.abs(torchs) <= bound), name  # torch's own bound
        assert torchs.max() > 0.98 * bound, name
    assert not params["in_proj_bias"].any()
    assert not params["out_proj_bias"].any()
    assert not module.in_proj_bias.detach().numpy().any()


def test_embedding_inits() -> None:
    table = portnn.Embedding(200, 100).init(np.random.default_rng(0))["weight"]
    assert abs(table.std() - 1.0) < 0.02  # N(0, 1), torch's default (2e4 draws)
    assert abs(table.mean()) < 0.02
    positions = portnn.PositionalEmbedding(200, 100).init(np.random.default_rng(0))["weight"]
    assert abs(positions.std() - 0.02) < 0.02 * 0.02  # N(0, 0.02^2), minGPT's
    assert portnn.PositionalEmbedding(5, 3, std=0.5).init(np.random.default_rng(0))["weight"].std() > 0.2


# ---- errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("layer", "shape", "match"), [
    (portnn.GRU(3, 4), (2, 5), r"GRU\(input_size=3.*expects input of shape \(batch, time >= 1, 3\), got shape "
                               r"\(2, 5\)"),
    (portnn.LSTM(3, 4), (2, 5, 4), r"LSTM\(.*\(batch, time >= 1, 3\), got shape \(2, 5, 4\)"),
    (portnn.GRU(3, 4), (2, 0, 3), r"GRU\(.*got shape \(2, 0, 3\)"),
    (portnn.MultiHeadAttention(6, 2), (2, 5, 4), r"MultiHeadAttention\(embed_dim=6.*\(batch, time >= 1, 6\), got "
                                                 r"shape \(2, 5, 4\)"),
    (portnn.MultiHeadAttention(6, 2), (2, 6), r"MultiHeadAttention\(.*got shape \(2, 6\)"),
    (portnn.PositionalEmbedding(4, 3), (2, 5, 3), r"PositionalEmbedding\(max_length=4.*sequences of length 5 "
                                                  r"\(input shape \(2, 5, 3\)\) are longer than max_length 4"),
    (portnn.PositionalEmbedding(4, 3), (2, 3, 2), r"PositionalEmbedding\(.*\(batch, time, 3\), got shape "
                                                  r"\(2, 3, 2\)"),
    (portnn.LastStep(), (2, 3), r"LastStep\(\).*\(batch, time >= 1, features\), got shape \(2, 3\)"),
    (portnn.GlobalAvgPoolTime(), (2, 3, 4, 5), r"GlobalAvgPoolTime\(\).*got shape \(2, 3, 4, 5\)"),
    (portnn.Dense(3, 4), (2, 5, 4), r"Dense\(in_features=3.*got shape \(2, 5, 4\) \(or of rank > 2: "
                                    r"\(batch, \.\.\., 3\)\)"),
    (portnn.Dense(3, 4), (3,), r"Dense\(.*got shape \(3,\)"),
])
def test_bad_input_shapes_are_named(layer, shape, match) -> None:
    with pytest.raises(ValueError, match=match):
        layer.output_shape(shape, "fit: layer 0")


@pytest.mark.parametrize(("make", "error", "match"), [  # wrong types on purpose: each marked for mypy
    (lambda: portnn.GRU(0, 4), ValueError, "GRU: input_size must be an int >= 1, got 0"),
    (lambda: portnn.LSTM(3, 2.5), TypeError,  # type: ignore[arg-type]
     "LSTM: hidden_size must be an int >= 1, got 2.5"),
    (lambda: portnn.GRU(3, 4, return_sequences=1), TypeError,  # type: ignore[arg-type]
     "GRU: return_sequences must be True or False, got 1"),
    (lambda: portnn.LSTM(3, 4, bidirectional="yes"), TypeError,  # type: ignore[arg-type]
     "LSTM: bidirectional must be True or False"),
    (lambda: portnn.MultiHeadAttention(10, 3), ValueError,
     r"MultiHeadAttention: embed_dim \(10\) must be divisible by num_heads \(3\)"),
    (lambda: portnn.MultiHeadAttention(8, 0), ValueError, "MultiHeadAttention: num_heads must be an int >= 1, got 0"),
    (lambda: portnn.MultiHeadAttention(8, 2, dropout=1.0), ValueError,
     r"MultiHeadAttention: dropout must be a finite number in \[0, 1\), got 1.0"),
    (lambda: portnn.MultiHeadAttention(8, 2, causal=None), TypeError,  # type: ignore[arg-type]
     "MultiHeadAttention: causal must be True or"),
    (lambda: portnn.Embedding(0, 3), ValueError, "Embedding: num_embeddings must be an int >= 1, got 0"),
    (lambda: portnn.Embedding(5, -1), ValueError, "Embedding: embedding_dim must be an int >= 1, got -1"),
    (lambda: portnn.PositionalEmbedding(0, 3), ValueError, "PositionalEmbedding: max_length must be an int >= 1"),
    (lambda: portnn.PositionalEmbedding(4, 3, std=0.0), ValueError, "PositionalEmbedding: std must be a finite"),
])
def test_bad_arguments_are_named(make, error, match) -> None:
    with pytest.raises(error, match=match):
        make()


def test_num_heads_change_that_breaks_divisibility_is_refused_and_undone() -> None:
    layer = portnn.MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"embed_dim \(8\) must be divisible by num_heads \(3\)"):
        layer.num_heads = 3
    assert layer.num_heads == 2


def test_embedding_input_checks(case64) -> None:
    """check_input: one host read names the bad id (above or below the range); float ids are a TypeError there
    and in forward (a static dtype check, no host read)."""
    layer = portnn.Embedding(5, 3)
    xp = case64.xp
    layer.check_input(case64.asarray(np.array([[0, 4], [2, 2]]), dtype=xp.int64), xp, "fit: layer 0")  # fine
    layer.check_input(case64.asarray(np.zeros((0, 3), dtype=np.int64), dtype=xp.int64), xp, "fit: layer 0")
    for bad, shown in (([[0, 5], [1, 2]], "5"), ([[0, 1], [-1, 2]], "-1"), ([[7, -3]], "-3")):
        with pytest.raises(ValueError, match=rf"fit: layer 0 \(Embedding\(num_embeddings=5, embedding_dim=3\)\): "
                                             rf"token ids must lie in \[0, 5\), got id {shown}"):
            layer.check_input(case64.asarray(np.array(bad), dtype=xp.int64), xp, "fit: layer 0")
    floats = case64.asarray(np.array([[0.0, 1.0]]))
    with pytest.raises(TypeError, match=r"fit: layer 0 \(Embedding\(.*expects integer token ids, got dtype "
                                        r"float64 \(shape \(1, 2\)\)"):
        layer.check_input(floats, xp, "fit: layer 0")
    ctx = Context(xp, case64.device, case64.dtype)
    with pytest.raises(TypeError, match=r"Embedding.forward \(Embedding\(.*expects integer token ids"):
        layer.forward({"weight": case64.asarray(np.zeros((5, 3)))}, floats, ctx)


def test_the_default_check_input_accepts_anything(numpy64) -> None:
    layer, x = portnn.Dense(2, 3), np.array([[np.inf, -1e300]])
    # the None it returns (annotated so) is what this test checks
    assert layer.check_input(x, numpy64.xp, "fit") is None  # type: ignore[func-returns-value]


def test_bidirectional_last_step_is_torch_h_n(numpy64) -> None:
    """Without return_sequences the output is [forward at t = T-1, reverse at t = 0], which is the sequence
    output's [..., -1, :H] beside its [..., 0, H:], not its last row."""
    rng = np.random.default_rng(18)
    x = rng.standard_normal((2, 5, 3))
    seq, last = portnn.GRU(3, 4, True, True), portnn.GRU(3, 4, False, True)
    params = seq.init(rng)
    ctx = Context(numpy64.xp, numpy64.device, numpy64.dtype)
    ys, _ = seq.forward(params, x, ctx)
    y, _ = last.forward(params, x, ctx)
    np.testing.assert_array_equal(y, np.concatenate([ys[:, -1, :4], ys[:, 0, 4:]], axis=1))
    assert not np.allclose(y, ys[:, -1, :])


def test_config_round_trip() -> None:
    for make, _, _ in CASES.values():
        layer = make()
        again = type(layer)(**layer.config())
        assert again.config() == layer.config()
        assert repr(again) == repr(layer)
