"""Parity: a deeper net (2 hidden layers with biases, tanh/relu, shuffled mini-batches) trained 200 steps on every
backend ends with NumPy's weights (same dtype, same host initialisation)."""

from __future__ import annotations

from functools import cache

import numpy as np

from portnn import recipes

MLP = recipes.get("mlp")


def train(case) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[float]]:
    X, y = MLP.data()
    net = MLP.model(0).to(case.xp, case.device, case.dtype_name)
    init = net.state_dict()
    losses = net.fit(case.asarray(X), case.asarray(y), loss=MLP.loss(), optimizer=MLP.optimizer(MLP.lr),
                     epochs=MLP.epochs, batch_size=MLP.batch_size)
    return init, net.state_dict(), losses


@cache
def numpy_reference(dtype: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[float]]:
    from tests.conftest import _case

    return train(_case("numpy", "cpu", dtype))


def test_mlp_recipe_is_200_steps() -> None:
    n = MLP.data()[0].shape[0]
    assert MLP.epochs * -(-n // MLP.batch_size) == 200


def test_mlp_trains_to_numpy_weights(case) -> None:
    init, final, losses = train(case)
    ref_init, ref_final, ref_losses = numpy_reference(case.dtype_name)
    for key in ref_init:
        np.testing.assert_array_equal(init[key], ref_init[key])  # one host initialisation for every backend
    assert losses[-1] < 0.5 * losses[0], "the recipe must actually train"
    worst = 0.0
    for key, ref in ref_final.items():
        assert final[key].dtype == np.dtype(case.dtype_name), key
        assert np.max(np.abs(ref - ref_init[key])) > 1e-2, f"{key} barely moved: parity would be vacuous"
        worst = max(worst, float(np.max(np.abs(final[key] - ref) / np.maximum(1.0, np.abs(ref)))))
    assert worst <= case.tol(), f"{case}: max scaled weight difference {worst:.3e} > {case.tol():.0e}"
    np.testing.assert_allclose(losses, ref_losses, rtol=max(case.tol(), 1e-15) * 100, atol=0)
