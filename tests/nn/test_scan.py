"""The one time loop (``portnn.nn.scan``): the Python loop keeps the tuple structure of carry and outputs and runs
backwards with reverse=True; under jax.jit with ``ctx.scan = jax.lax.scan`` GRU and LSTM give eager's numbers
(forward and backward, 1e-12 in float64) while the traced program stays one loop whatever the sequence length."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import portnn
from portnn import Context, backends, to_numpy
from portnn.nn.scan import scan


def test_python_loop_stacks_tuples_and_runs_in_reverse(numpy64) -> None:
    xp = numpy64.xp
    ctx = Context(xp, numpy64.device, numpy64.dtype)
    xs = (xp.asarray([1.0, 2.0, 3.0]), xp.asarray([[1.0], [10.0], [100.0]]))

    def body(carry, x):
        a, b = x
        total = carry + a + b[0]
        return total, (total, (a * 2.0, None))

    carry, (totals, (doubled, nothing)) = scan(ctx, body, 0.0, xs, 3)
    assert carry == 117.0
    np.testing.assert_array_equal(totals, [2.0, 14.0, 117.0])  # ys[t] is step t's output
    np.testing.assert_array_equal(doubled, [2.0, 4.0, 6.0])
    assert nothing is None
    carry, (totals, _) = scan(ctx, body, 0.0, xs, 3, reverse=True)  # t = 2, 1, 0; ys still indexed by t
    assert carry == 117.0
    np.testing.assert_array_equal(totals, [117.0, 115.0, 103.0])


def test_ctx_scan_is_used_when_set(numpy64) -> None:
    calls = []

    def fake(body, carry, xs, length):  # stands for jax.lax.scan: records the call, returns its inputs
        calls.append((body, length, to_numpy(xs).tolist()))
        return carry, xs

    ctx = Context(numpy64.xp, numpy64.device, numpy64.dtype, scan=fake)
    xs = numpy64.xp.asarray([1.0, 2.0])
    carry, ys = scan(ctx, print, 1.0, xs, 2)  # type: ignore[arg-type]  # print: a token the fake only records
    assert carry == 1.0
    np.testing.assert_array_equal(ys, [1.0, 2.0])
    _, ys = scan(ctx, print, 1.0, xs, 2, reverse=True)  # type: ignore[arg-type]
    np.testing.assert_array_equal(ys, [1.0, 2.0])  # flipped in, flipped back
    assert calls == [(print, 2, [1.0, 2.0]), (print, 2, [2.0, 1.0])]


LAYERS = {
    "gru-bi-seq": lambda: portnn.GRU(3, 4, return_sequences=True, bidirectional=True),
    "lstm-bi": lambda: portnn.LSTM(3, 4, bidirectional=True),
}


@pytest.fixture(scope="module")
def jax_setup():
    jax = pytest.importorskip("jax")  # its config options are attributes set at run time, unknown to mypy
    if not backends.get("jax").installed():
        pytest.skip("jax is not installed")
    xp, device = backends.load("jax")  # sets JAX_ENABLE_X64 as the backend file asks
    if not jax.config.jax_enable_x64:
        pytest.skip("float64 on JAX needs JAX_ENABLE_X64=1 (this run keeps JAX's defaults)")
    return jax, xp, device


def _pass(layer, jax_setup, steps: int, scanned: bool, jit: bool):
    """(y, dx, grads) of one forward and backward pass of ``layer`` on (2, steps, 3) inputs under JAX."""
    jax, xp, device = jax_setup
    rng = np.random.default_rng(steps)
    params = {k: xp.asarray(v, dtype=xp.float64, device=device) for k, v in layer.init(rng).items()}
    x = xp.asarray(rng.standard_normal((2, steps, 3)), dtype=xp.float64, device=device)
    ctx = Context(xp, device, xp.float64, scan=jax.lax.scan if scanned else None)

    def run(params, x):
        y, saved = layer.forward(params, x, ctx)
        dx, grads = layer.backward(params, saved, xp.sin(y), ctx)
        return y, dx, grads

    return (jax.jit(run) if jit else run)(params, x), jax.make_jaxpr(run)(params, x)


@pytest.mark.jax
@pytest.mark.parametrize("name", LAYERS)
def test_jit_with_lax_scan_equals_eager(jax_setup, name: str) -> None:
    layer = LAYERS[name]()
    (y0, dx0, g0), _ = _pass(layer, jax_setup, 6, scanned=False, jit=False)
    (y1, dx1, g1), _ = _pass(layer, jax_setup, 6, scanned=True, jit=True)
    for a, b in [(y0, y1), (dx0, dx1), *((g0[k], g1[k]) for k in g0)]:
        assert a.dtype == b.dtype == jax_setup[1].float64
        np.testing.assert_allclose(to_numpy(b), to_numpy(a), rtol=0, atol=1e-12)


def _count(jaxpr) -> int:
    return len(jaxpr.jaxpr.eqns)


@pytest.mark.jax
@pytest.mark.parametrize("name", LAYERS)
def test_traced_program_is_one_loop_whatever_the_length(jax_setup, name: str) -> None:
    """With ctx.scan the program has the same number of equations for T = 5 and T = 50, with scans in it; the
    Python loop (ctx.scan None) unrolls T copies, so the count would tell them apart."""
    layer = LAYERS[name]()
    _, short = _pass(layer, jax_setup, 5, scanned=True, jit=False)
    _, long = _pass(layer, jax_setup, 50, scanned=True, jit=False)
    assert _count(short) == _count(long)
    scans = [e for e in long.jaxpr.eqns if e.primitive.name in ("scan", "while")]
    assert len(scans) == 2 * 2  # forward and backward of each direction
    _, short_loop = _pass(layer, jax_setup, 5, scanned=False, jit=False)
    _, long_loop = _pass(layer, jax_setup, 50, scanned=False, jit=False)
    assert _count(long_loop) > _count(short_loop) + 45 * 10  # at least 10 equations per unrolled step
    assert _count(long) < _count(short_loop)


@pytest.mark.jax
def test_attention_dropout_under_jit_draws_the_eager_mask(jax_setup) -> None:
    """The attention dropout mask comes from the key's counters: jit with a traced key gives eager's outputs."""
    jax, xp, device = jax_setup
    layer = portnn.MultiHeadAttention(4, 2, causal=True, dropout=0.5)
    rng = np.random.default_rng(3)
    params = {k: xp.asarray(v, dtype=xp.float64, device=device) for k, v in layer.init(rng).items()}
    x = xp.asarray(rng.standard_normal((2, 3, 4)), dtype=xp.float64, device=device)
    ctx = Context(xp, device, xp.float64, training=True, key=(1, 2, 3, 4))

    def run(params, x, epoch, batch):
        c = dataclasses.replace(ctx, key=(1, 2, epoch, batch))
        y, saved = layer.forward(params, x, c)
        return y, layer.backward(params, saved, xp.cos(y), c)

    eager = run(params, x, 3, 4)
    jitted = jax.jit(run)(params, x, xp.asarray(3, dtype=xp.int64), xp.asarray(4, dtype=xp.int64))
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), strict=True):
        if a is not None:
            np.testing.assert_allclose(to_numpy(b), to_numpy(a), rtol=0, atol=1e-12)
