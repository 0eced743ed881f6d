"""clip_by_global_norm: equal to torch.nn.utils.clip_grad_norm_ on every backend, pure, dtype- and device-preserving,
traceable under jax.jit, and its max_norm checked."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import pytest

import portnn
from portnn.optim.clip import clip_by_global_norm

RNG = np.random.default_rng(5)
# a gradient tree as a model holds it, with a parameter-free layer ({}) and a 0-d parameter
SHAPES: list[dict[str, tuple[int, ...]]] = [{"weight": (4, 3), "bias": (3,)}, {}, {"weight": (3, 2)},
                                            {"scale": ()}]
GRADS = [{n: RNG.standard_normal(s) for n, s in layer.items()} for layer in SHAPES]
NORM = float(np.sqrt(sum(np.sum(g * g) for layer in GRADS for g in layer.values())))  # about 4.5
MAX_NORMS = {"clipped": 1.0, "just-clipped": NORM * 0.999, "not-clipped": 100.0}




def _host(tree: list[dict[str, Any]]) -> list[dict[str, np.ndarray]]:
    return [{n: portnn.to_numpy(a) for n, a in layer.items()} for layer in tree]


def torch_reference(grads: list[dict[str, np.ndarray]], max_norm: float) -> tuple[list[dict[str, np.ndarray]], float]:
    """(clipped grads, total norm) by torch.nn.utils.clip_grad_norm_, float64 on the CPU."""
    torch = pytest.importorskip("torch")
    params = [{n: torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for n, g in layer.items()}
              for layer in grads]
    for layer, g in zip(params, grads, strict=True):
        for n, p in layer.items():
            p.grad = torch.tensor(g[n], dtype=torch.float64)
    total = torch.nn.utils.clip_grad_norm_([p for layer in params for p in layer.values()], max_norm)
    return [{n: p.grad.numpy() for n, p in layer.items()} for layer in params], float(total)


@pytest.mark.parametrize("which", MAX_NORMS)
def test_equals_torch_clip_grad_norm(case64, which: str) -> None:
    max_norm = MAX_NORMS[which]
    expected, expected_norm = torch_reference(GRADS, max_norm)
    norm: Any  # an array here (the float is for a tree without gradients and no xp)
    clipped, norm = clip_by_global_norm(case64.tree(GRADS), max_norm)
    assert norm.shape == ()
    # measured: the norm equal bit for bit on numpy, array-api-strict, torch and jax
    np.testing.assert_allclose(portnn.to_numpy(norm), expected_norm, rtol=1e-12, atol=0)
    assert [sorted(layer) for layer in clipped] == [sorted(layer) for layer in SHAPES]
    for layer, ref in zip(_host(clipped), expected, strict=True):
        for n, g in layer.items():
            np.testing.assert_allclose(g, ref[n], rtol=1e-12, atol=0)  # measured: <= 2.1e-16 (exact on torch)
    clipped_norm = np.sqrt(sum(np.sum(g * g) for layer in _host(clipped) for g in layer.values()))
    if which == "not-clipped":  # the coefficient is exactly 1: the gradients come back bit for bit
        for layer, ref in zip(_host(clipped), GRADS, strict=True):
            for n, g in layer.items():
                np.testing.assert_array_equal(g, ref[n])
    else:
        assert clipped_norm == pytest.approx(max_norm * NORM / (NORM + 1e-6), rel=1e-12)


def test_is_pure_and_keeps_dtype_and_device(case) -> None:
    grads = case.tree(GRADS)
    before = _host(grads)
    norm: Any  # an array here (the float is for a tree without gradients and no xp)
    clipped, norm = clip_by_global_norm(grads, 1.0)
    for layer, ref in zip(_host(grads), before, strict=True):  # the input is untouched
        for n, g in layer.items():
            np.testing.assert_array_equal(g, ref[n])
    assert norm.dtype == case.dtype
    assert array_api_compat.device(norm) == case.device
    for layer in clipped:
        for a in layer.values():
            assert a.dtype == case.dtype, f"{a.dtype} in a {case.dtype_name} clip"
            assert array_api_compat.device(a) == case.device
    assert clipped[1] == {}
    # float32 too agrees with torch's float64 result to float32 rounding (measured: norm 2.1e-8, grads 1.6e-7)
    expected, expected_norm = torch_reference(GRADS, 1.0)
    rtol = 1e-12 if case.dtype_name == "float64" else 1e-6
    np.testing.assert_allclose(portnn.to_numpy(norm), expected_norm, rtol=rtol)
    for layer, ref in zip(_host(clipped), expected, strict=True):
        for n, g in layer.items():
            np.testing.assert_allclose(g, ref[n], rtol=rtol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_under_jax_jit_equals_eager(dtype: str) -> None:
    """No host read and no Python branch on a value: it traces under jax.jit, with max_norm a Python constant."""
    jax = pytest.importorskip("jax")
    from tests.conftest import _case

    case = _case("jax", "cpu", dtype)
    for max_norm in (1.0, 100.0):
        grads = case.tree(GRADS)
        traces: list[float] = []

        def clip(g: Any, max_norm: float = max_norm, traces: list[float] = traces) -> Any:
            traces.append(max_norm)  # runs in Python once per trace
            return clip_by_global_norm(g, max_norm)

        jitted = jax.jit(clip)
        (eager, eager_norm), (compiled, compiled_norm) = clip(grads), jitted(grads)
        jitted(grads)
        assert len(traces) == 2  # the eager call and one trace: the second jitted call reused it
        assert compiled_norm.dtype == case.dtype
        # measured: one ulp (2.0e-16) apart in float64, where XLA fuses the sums; bit for bit in float32. jit's
        # outputs have each layer's names sorted (a pytree), so compare by name, never by order
        rtol = 1e-15 if dtype == "float64" else 1e-6
        np.testing.assert_allclose(portnn.to_numpy(compiled_norm), portnn.to_numpy(eager_norm), rtol=rtol, atol=0)
        for layer, ref in zip(_host(compiled), _host(eager), strict=True):
            for n, g in layer.items():
                assert g.dtype == np.dtype(dtype)
                np.testing.assert_allclose(g, ref[n], rtol=rtol, atol=0)
        assert compiled[1] == {}


def test_non_finite_gradients_give_non_finite_results_as_torch() -> None:
    """torch's default (error_if_nonfinite=False): a NaN norm makes every gradient NaN, nothing raises."""
    grads = [{n: g.copy() for n, g in layer.items()} for layer in GRADS]
    grads[0]["bias"][1] = np.nan
    expected, expected_norm = torch_reference(grads, 1.0)
    clipped, norm = clip_by_global_norm(grads, 1.0)
    assert np.isnan(expected_norm)
    assert np.isnan(portnn.to_numpy(norm))
    for layer, ref in zip(_host(clipped), expected, strict=True):
        for n, g in layer.items():
            assert np.isnan(ref[n]).all()
            assert np.isnan(g).all()


def test_without_gradients_returns_them_and_a_zero_norm() -> None:
    """A model without parameters: its grads as they are and a 0 norm (a Python float by default; float64 in ``xp``
    on ``device`` when given), as torch returns tensor(0.0) for no gradients."""
    empties: list[list[dict[str, Any]]] = [[], [{}, {}]]
    for grads in empties:
        clipped, norm = clip_by_global_norm(grads, 1.0)
        assert clipped == grads
        assert clipped is not grads
        assert norm == 0.0
        assert type(norm) is float
    pytest.importorskip("array_api_strict")
    from tests.conftest import _case

    case = _case("array_api_strict", "device1", "float64")
    clipped, norm = clip_by_global_norm([{}], 1.0, xp=case.xp, device=case.device)
    assert clipped == [{}]
    assert not isinstance(norm, float)  # a 0-d array of xp
    assert array_api_compat.array_namespace(norm) is case.xp
    assert norm.device == case.device
    assert float(portnn.to_numpy(norm)) == 0.0


def test_mixed_dtypes_keep_each_gradient_dtype() -> None:
    grads: list[dict[str, Any]] = [{"w": GRADS[0]["weight"].astype(np.float32)}, {"w": GRADS[2]["weight"]}]
    clipped, _ = clip_by_global_norm(grads, 0.5)
    assert clipped[0]["w"].dtype == np.float32
    assert clipped[1]["w"].dtype == np.float64
    expected, _ = torch_reference([{"w": GRADS[0]["weight"]}, {"w": GRADS[2]["weight"]}], 0.5)
    np.testing.assert_allclose(clipped[1]["w"], expected[1]["w"], rtol=1e-6)


@pytest.mark.parametrize(("max_norm", "error", "message"), [
    (0.0, ValueError, r"clip_by_global_norm: max_norm must be a finite number > 0, got 0.0"),
    (-1, ValueError, r"clip_by_global_norm: max_norm must be a finite number > 0, got -1"),
    (float("nan"), ValueError, r"clip_by_global_norm: max_norm must be a finite number > 0, got nan"),
    (float("inf"), ValueError, r"clip_by_global_norm: max_norm must be a finite number > 0, got inf"),
    ("big", TypeError, r"clip_by_global_norm: max_norm must be a number, got 'big'"),
    (True, TypeError, r"clip_by_global_norm: max_norm must be a number, got True"),
    (None, TypeError, r"clip_by_global_norm: max_norm must be a number, got None"),
])
def test_bad_max_norm_is_named(max_norm: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        clip_by_global_norm(GRADS, max_norm)


def test_bad_tree_is_named() -> None:
    flat = {(0, "weight"): GRADS[0]["weight"]}
    with pytest.raises(TypeError, match=r"grads must be a list with one \{name: array\} dict per layer, got dict"):
        clip_by_global_norm(flat, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"grads must be a list with one \{name: array\} dict per layer, got list"):
        clip_by_global_norm([GRADS[0], None], 1.0)  # type: ignore[list-item]


def test_max_norm_numpy_scalar_does_not_promote_float32() -> None:
    """max_norm becomes a Python float: a NumPy float64 scalar would otherwise turn float32 gradients float64."""
    grads = [{n: g.astype(np.float32) for n, g in layer.items()} for layer in GRADS]
    norm: Any  # an array here (the float is for a tree without gradients and no xp)
    clipped, norm = clip_by_global_norm(grads, np.float64(1.0))
    assert norm.dtype == np.float32
    assert all(g.dtype == np.float32 for layer in clipped for g in layer.values())
