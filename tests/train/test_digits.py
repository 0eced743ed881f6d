"""The digits-mlp recipe (scikit-learn's 8x8 digits) reaches >= 97% test accuracy, on NumPy with the recipe as the
CLI runs it, and on every CPU backend with a cheaper schedule, getting the same number of digits right as NumPy.

Cost (2 busy cores): the recipe's 1290 Adam steps took 0.5 s on NumPy, 2.8 s on strict, 1.3-8.5 s on torch and
14-17 s on JAX (eager: every op and shape compiled once, ~4 s in the first epoch), 40 s for all five. The cheaper
schedule (same model, loss and optimizer; batches of 128, lr 5e-3, 20 epochs: 220 steps) keeps the backend test
affordable; it still has to reach 97% and match NumPy to the digit."""

from __future__ import annotations

import numpy as np
import pytest

from portnn import recipes

pytest.importorskip("sklearn")
RECIPE = recipes.get("digits-mlp")
SEED = 1  # the CLI's default seed


FULL = {"lr": RECIPE.lr, "epochs": RECIPE.epochs, "batch_size": RECIPE.batch_size}
CHEAP = {"lr": 5e-3, "epochs": 20, "batch_size": 128}


def train_and_test(case, schedule: dict) -> tuple[int, np.ndarray]:
    """(correct test predictions, final weights of layer 0) after training the recipe's model on ``case``."""
    assert RECIPE.test_data is not None  # the recipe has held-out data
    (X, y), (X_test, y_test) = RECIPE.data(), RECIPE.test_data()
    net = RECIPE.model(SEED).to(case.xp, case.device, case.dtype_name)
    net.fit(case.asarray(X), case.asarray(y, dtype=case.ints), loss=RECIPE.loss(),
            optimizer=RECIPE.optimizer(schedule["lr"]), epochs=schedule["epochs"], batch_size=schedule["batch_size"])
    result = net.evaluate(case.asarray(X_test), case.asarray(y_test, dtype=case.ints))
    return round(result["accuracy"] * len(y_test)), net.state_dict()["0.weight"]


@pytest.fixture(scope="module")
def numpy_result() -> tuple[int, np.ndarray]:
    from tests.conftest import _case

    return train_and_test(_case("numpy", "cpu", "float64"), CHEAP)


def test_the_recipe_reaches_97_percent_on_numpy(numpy64) -> None:
    correct, _ = train_and_test(numpy64, FULL)
    assert RECIPE.test_data is not None
    n = len(RECIPE.test_data()[1])
    assert correct / n >= 0.97, f"{correct}/{n} = {correct / n:.2%}"


def test_every_backend_gets_the_same_digits_right(case64, numpy_result) -> None:
    correct, weight = train_and_test(case64, CHEAP)
    assert RECIPE.test_data is not None
    n = len(RECIPE.test_data()[1])
    assert correct / n >= 0.97, f"{case64}: {correct}/{n} = {correct / n:.2%}"
    assert correct == numpy_result[0]
    # 220 Adam steps: measured max |dW| 0 (strict), 3.6e-14 (torch), 3.2e-14 (jax)
    np.testing.assert_allclose(weight, numpy_result[1], rtol=0, atol=1e-12)
