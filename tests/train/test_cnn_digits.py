"""The digits-cnn recipe: >= 97% test accuracy on NumPy (full recipe), the same weights as NumPy on every backend
after a shortened run, checkpoints and the CLI."""

from __future__ import annotations

from functools import cache

import numpy as np

import portnn
from portnn import cli, recipes, to_numpy

CNN = recipes.get("digits-cnn")
SHORT = 128  # samples of the shortened parity run: 2 epochs of 4 batches of 32 = 8 Adam steps


def test_digits_cnn_reaches_97_percent_on_numpy(numpy64) -> None:
    assert CNN.test_data is not None  # the recipe has held-out data
    (X, y), (X_test, y_test) = CNN.data(), CNN.test_data()
    assert X.shape[1:] == (1, 8, 8)
    net = CNN.model(1)
    net.fit(X, y, loss=CNN.loss(), optimizer=CNN.optimizer(CNN.lr), epochs=CNN.epochs, batch_size=CNN.batch_size)
    accuracy = float(np.mean(np.argmax(to_numpy(net.predict(X_test)), axis=1) == y_test))
    assert accuracy >= 0.97, f"test accuracy {accuracy:.4f}"


def train_short(case) -> tuple[dict[str, np.ndarray], list[float]]:
    X, y = CNN.data()
    net = CNN.model(1).to(case.xp, case.device, case.dtype_name)
    losses = net.fit(case.asarray(X[:SHORT], dtype=None), case.asarray(y[:SHORT], dtype=None), loss=CNN.loss(),
                     optimizer=CNN.optimizer(CNN.lr), epochs=2, batch_size=CNN.batch_size)
    return net.state_dict(), list(losses)


@cache
def numpy_short() -> tuple[dict[str, np.ndarray], list[float]]:
    from tests.conftest import _case

    return train_short(_case("numpy", "cpu", "float64"))


def test_digits_cnn_weights_match_numpy(case64) -> None:
    state, losses = train_short(case64)
    ref_state, ref_losses = numpy_short()
    assert abs(losses[0] - ref_losses[0]) <= 1e-12
    assert losses[-1] < losses[0]
    for key, ref in ref_state.items():
        err = float(np.max(np.abs(state[key] - ref) / np.maximum(1.0, np.abs(ref))))
        assert err <= 1e-10, f"{key}: scaled difference {err:.2e} from NumPy"


def test_cnn_checkpoint_round_trip(numpy64, tmp_path) -> None:
    X = CNN.data()[0][:16]
    net = portnn.Sequential(portnn.Conv2D(1, 3, (3, 2), stride=(1, 2), padding=1), portnn.ReLU(),
                            portnn.AvgPool2D(2), portnn.Dropout(0.2), portnn.MaxPool2D(2, stride=1),
                            portnn.Flatten(), portnn.Dense(9, 10), seed=4)  # (3, 8, 5) -> (3, 4, 2) -> (3, 3, 1)
    portnn.save(net, tmp_path / "cnn.npz")
    loaded = portnn.load(tmp_path / "cnn.npz")
    assert repr(loaded) == repr(net)
    np.testing.assert_array_equal(to_numpy(loaded.predict(X)), to_numpy(net.predict(X)))


def test_cli_trains_digits_cnn(capsys) -> None:
    assert cli.main(["train", "--example", "digits-cnn", "--epochs", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("test loss"))
    assert float(line.split("test accuracy")[1].split("%")[0]) > 80.0  # 2 epochs: ~84% measured
