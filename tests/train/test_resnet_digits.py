"""The digits-resnet recipe (BatchNorm residual CNN, warm-up + cosine schedule, clipping): >= 97% test accuracy on
NumPy, the same weights as NumPy on every backend after a shortened run, and the CLI resuming mid-schedule."""

from __future__ import annotations

from functools import cache

import numpy as np

import portnn
from portnn import cli, recipes, to_numpy

RESNET = recipes.get("digits-resnet")
SHORT = 96  # samples of the shortened parity run: 2 epochs of 3 batches of 32


def test_digits_resnet_reaches_97_percent_on_numpy(numpy64) -> None:
    assert RESNET.test_data is not None  # the recipe has held-out data
    (X, y), (X_test, y_test) = RESNET.data(), RESNET.test_data()
    net = RESNET.model(1)
    net.fit(X, y, loss=RESNET.loss(), optimizer=RESNET.optimizer(RESNET.lr), epochs=RESNET.epochs,
            batch_size=RESNET.batch_size, **RESNET.controls(RESNET.epochs))
    accuracy = float(np.mean(np.argmax(to_numpy(net.predict(X_test)), axis=1) == y_test))
    assert accuracy >= 0.97, f"test accuracy {accuracy:.4f}"  # 98.4% measured
    assert net.schedule_t == RESNET.epochs


def train_short(case) -> dict[str, np.ndarray]:
    X, y = RESNET.data()
    net = RESNET.model(1).to(case.xp, case.device, case.dtype_name)
    net.fit(case.asarray(X[:SHORT], dtype=None), case.asarray(y[:SHORT], dtype=None), loss=RESNET.loss(),
            optimizer=RESNET.optimizer(RESNET.lr), epochs=2, batch_size=RESNET.batch_size, **RESNET.controls(4))
    return net.state_dict()


@cache
def numpy_short() -> dict[str, np.ndarray]:
    from tests.conftest import _case

    return train_short(_case("numpy", "cpu", "float64"))


def test_digits_resnet_weights_match_numpy(case64) -> None:
    state, ref_state = train_short(case64), numpy_short()
    assert set(state) == set(ref_state)
    for key, ref in ref_state.items():
        err = float(np.max(np.abs(state[key] - ref) / np.maximum(1.0, np.abs(ref))))
        assert err <= 1e-10, f"{key}: scaled difference {err:.2e} from NumPy"


def test_cli_trains_and_resumes_digits_resnet_mid_schedule(tmp_path, capsys) -> None:
    path = str(tmp_path / "r.npz")
    assert cli.main(["train", "--example", "digits-resnet", "--epochs", "1", "--quiet", "--save", path]) == 0
    out = capsys.readouterr().out
    assert "schedule CosineAnnealing(total=15, warmup=2" in out
    assert "gradient clipping at global norm 5" in out
    saved = portnn.load(path)
    assert (saved.schedule_t, saved.clip_norm, saved.epoch) == (1, 5.0, 1)
    assert cli.main(["train", "--resume", path, "--epochs", "1", "--quiet", "--save", path]) == 0
    out = capsys.readouterr().out
    assert "at t = 1" in out
    assert portnn.load(path).schedule_t == 2
