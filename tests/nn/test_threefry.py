"""The counter-based generator: Random123's known answers, equality with JAX's threefry, the same bits on every
backend (also under jax.jit and torch.compile), and slices of a draw equal to the draw of the slice."""

from __future__ import annotations

import numpy as np
import pytest

from portnn import backends, to_numpy
from portnn.nn import threefry

# Random123's known-answer vectors for threefry2x32_20 (also in JAX's random tests)
KATS = [((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))]


@pytest.mark.parametrize(("key", "counter", "expected"), KATS)
def test_known_answers_on_python_ints(key, counter, expected) -> None:
    assert threefry.threefry2x32(key, *counter) == expected


@pytest.mark.parametrize(("key", "counter", "expected"), KATS)
def test_known_answers_on_every_backend(case, key, counter, expected) -> None:
    lanes = threefry.lanes(case.xp)  # int64, or uint32 in JAX at its defaults (no x64)
    x0 = case.asarray(np.array([counter[0]]), dtype=lanes)
    x1 = case.asarray(np.array([counter[1]]), dtype=lanes)
    k = tuple(case.asarray(np.array(w), dtype=lanes) for w in key)  # Python ints >= 2**31 do not mix with uint32
    y0, y1 = threefry.threefry2x32(k, x0, x1, wrap=lanes == case.xp.uint32)
    assert (int(to_numpy(y0)[0]), int(to_numpy(y1)[0])) == expected


def test_equals_jax_threefry() -> None:
    pytest.importorskip("jax")
    import jax.extend.random as jr

    rng = np.random.default_rng(0)
    for _ in range(5):
        k0, k1 = (int(v) for v in rng.integers(0, 2**32, 2))
        k = (k0, k1)
        key = np.array(k, dtype=np.uint32)
        x = rng.integers(0, 2**32, 64).astype(np.uint32)
        ref = np.asarray(jr.threefry_2x32(key, x))  # splits x in halves: (x[:32], x[32:]) -> halves
        y0, y1 = threefry.threefry2x32(k, x[:32].astype(np.int64), x[32:].astype(np.int64))
        np.testing.assert_array_equal(np.concatenate([y0, y1]), ref.astype(np.int64))


def test_the_same_mask_on_every_backend(case) -> None:
    k = threefry.key(7, 2, 3, 4)
    expected = threefry.keep(k, (6, 5, 7), 0.3, np, "cpu")
    got = to_numpy(threefry.keep(k, (6, 5, 7), 0.3, case.xp, case.device))
    np.testing.assert_array_equal(got, expected)


def test_rows_of_a_draw_are_the_draw_of_the_rows() -> None:
    k = threefry.key(1, 0, 0, 0)
    whole = threefry.keep(k, (9, 3, 5), 0.4, np, "cpu")
    for lo, hi in [(0, 4), (4, 7), (7, 9), (3, 3)]:
        np.testing.assert_array_equal(threefry.keep(k, (9, 3, 5), 0.4, np, "cpu", rows=(lo, hi)), whole[lo:hi])
    w = threefry.words(k, 0, 21, np, "cpu")
    for start in range(0, 20):
        np.testing.assert_array_equal(threefry.words(k, start, 21 - start, np, "cpu"), w[start:])


def test_rate_and_independent_keys() -> None:
    k = threefry.key(1, 2, 3, 4)
    mask = threefry.keep(k, (200, 500), 0.25, np, "cpu")
    assert abs(1.0 - mask.mean() - 0.25) < 0.01  # 100000 draws: std of the rate ~0.0014
    for other in [(1, 2, 3, 5), (1, 2, 4, 4), (1, 3, 3, 4), (2, 2, 3, 4), (1 + 2**32, 2, 3, 4)]:
        assert not np.array_equal(mask, threefry.keep(threefry.key(*other), (200, 500), 0.25, np, "cpu"))
    assert threefry.keep(k, (10, 10), 0.0, np, "cpu").all()


def test_keys_traced_by_jax_jit_give_the_same_mask() -> None:
    if not backends.get("jax").installed():
        pytest.skip("jax is not installed")
    jnp, device = backends.load("jax")
    import jax

    draw = jax.jit(lambda e, b: threefry.keep(threefry.key(5, 1, e, b), (4, 6), 0.5, jnp, device))
    expected = threefry.keep(threefry.key(5, 1, 2, 3), (4, 6), 0.5, np, "cpu")
    np.testing.assert_array_equal(np.asarray(draw(jnp.asarray(2), jnp.asarray(3))), expected)
    np.testing.assert_array_equal(np.asarray(draw(jnp.asarray(2), jnp.asarray(4))),
                                  threefry.keep(threefry.key(5, 1, 2, 4), (4, 6), 0.5, np, "cpu"))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's inductor calls its own deprecated APIs
def test_keys_under_torch_compile_give_the_same_mask() -> None:
    if not backends.get("torch").installed():
        pytest.skip("torch is not installed")
    tx, device = backends.load("torch")
    import torch

    draw = torch.compile(lambda e, b: threefry.keep(threefry.key(5, 1, e, b), (4, 6), 0.5, tx, device),
                         fullgraph=True)
    expected = threefry.keep(threefry.key(5, 1, 2, 3), (4, 6), 0.5, np, "cpu")
    np.testing.assert_array_equal(draw(torch.tensor(2), torch.tensor(3)).numpy(), expected)
