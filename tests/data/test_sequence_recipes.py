"""The sequence recipes: minGPT's sort task (data, split, gpt-nano, its trainer's settings, the greedy score that
`portnn train` prints) and the adding problem; a few steps of each train (the full runs are measured, not tested:
sort-gpt takes minutes on NumPy)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

import portnn
from portnn.cli import main
from portnn.data import recipes, sequences
from portnn.data.gpt import sorted_correctly


def test_sort_problems_are_minGPTs_layout() -> None:
    X, y = sequences.sort_problems(300, "train", seed=3)
    assert X.shape == y.shape == (300, 11)
    assert X.dtype == y.dtype == np.int64
    problem, answer = X[:, :6], np.sort(X[:, :6], axis=1)
    np.testing.assert_array_equal(X[:, 6:], answer[:, :-1])  # the sorted digits so far, without the last
    np.testing.assert_array_equal(y[:, :5], -1)  # the input part is ignored ...
    np.testing.assert_array_equal(y[:, 5:], answer)  # ... from its last digit on, the next sorted digit
    assert set(np.unique(problem)) == {0, 1, 2}
    np.testing.assert_array_equal(sequences.sort_problems(300, "train", seed=3)[0], X)  # seeded
    assert not np.array_equal(sequences.sort_problems(300, "train", seed=4)[0], X)


def test_a_stable_hash_holds_out_a_quarter_of_all_sequences() -> None:
    every = list(itertools.product(range(3), repeat=6))
    test = {s for s in every if sequences.sort_split(s) == "test"}
    assert len(test) == 193  # of 729: SHA-256, the same in every process (Python's hash is salted)
    assert sequences.sort_split([0, 0, 2, 1, 0, 1]) == sequences.sort_split(np.array([0, 0, 2, 1, 0, 1]))
    train_rows = {tuple(r) for r in sequences.sort_problems(5000, "train", seed=0)[0][:, :6]}
    test_rows = {tuple(r) for r in sequences.sort_problems(5000, "test", seed=0)[0][:, :6]}
    assert test_rows == test  # 5,000 draws with repetition reach every test sequence
    assert train_rows == set(every) - test
    with pytest.raises(ValueError, match="sort_problems: split must be one of"):
        sequences.sort_problems(3, "val", seed=0)


def test_the_adding_problem() -> None:
    X, y = sequences.adding(2000, seed=0, steps=50)
    assert X.shape == (2000, 50, 2)
    assert y.shape == (2000, 1)
    marks = X[:, :, 1]
    assert np.all(marks.sum(axis=1) == 2)
    assert np.all(marks[:, :25].sum(axis=1) == 1)  # one in each half
    np.testing.assert_allclose(y[:, 0], (X[:, :, 0] * marks).sum(axis=1), rtol=1e-15)
    assert abs(np.mean((y - 1.0) ** 2) - 1 / 6) < 0.01  # the bar's baseline: predicting the mean
    assert np.all((X[:, :, 0] >= 0) & (X[:, :, 0] < 1))


def test_sort_gpt_is_gpt_nano_with_minGPTs_trainer() -> None:
    r = recipes.get("sort-gpt")
    net = r.model(1)
    assert sum(v.size for v in net.state_dict().values()) == 85_731  # minGPT prints 0.09M
    positions = net.layers[1]
    assert isinstance(positions, portnn.PositionalEmbedding)
    assert positions.max_length == 11
    assert sum(isinstance(layer, portnn.Residual) for layer in net.layers) == 6  # 3 blocks of 2
    opt = r.optimizer(r.lr)
    assert isinstance(opt, portnn.AdamW)
    assert (opt.lr, tuple(opt.betas), opt.weight_decay) == (5e-4, (0.9, 0.95), 0.1)
    X = r.data()[0]
    assert r.batch_size is not None
    assert r.epochs * (len(X) // r.batch_size) == 2000  # minGPT's 2,000 iterations of 64
    assert r.clip_norm == 1.0
    loss = r.loss()
    assert isinstance(loss, portnn.SoftmaxCrossEntropy)
    assert loss.ignore_index == -1
    assert r.test_data is not None
    assert len(r.test_data()[0]) == 5000


@pytest.mark.parametrize("name", ["sort-gpt", "adding-gru", "tiny-gru", "tiny-gpt"])
def test_a_few_steps_of_each_sequence_recipe_lower_its_loss(name: str) -> None:
    r = recipes.get(name)
    X, y = r.data()
    net = r.model(1).to("numpy")
    kwargs = {"loss": r.loss(), "optimizer": r.optimizer(r.lr), "batch_size": r.batch_size, **r.controls(1)}
    first = net.evaluate(X[:256], y[:256], loss=r.loss())["loss"]
    net.fit(X, y, steps=6, **kwargs)
    assert net.evaluate(X[:256], y[:256], loss=r.loss())["loss"] < first


def test_sorted_correctly_scores_greedy_answers() -> None:
    r = recipes.get("tiny-gpt")
    net = r.model(1).to("numpy")
    X, _ = sequences.sort_problems(40, "train", seed=0, length=4)
    answers = portnn.to_numpy(portnn.generate(net, X[:, :4], 4))[:, 4:]
    expected = np.mean(np.all(answers == np.sort(X[:, :4], axis=1), axis=1))
    assert sorted_correctly(net, X, 4) == expected


def test_portnn_train_prints_the_sorted_fractions(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    small_train, small_test = sequences.sort_problems(128, "train", 0), sequences.sort_problems(50, "test", 1)
    monkeypatch.setattr(recipes, "_sort_train", lambda: small_train)  # the score reads these, as the recipe
    monkeypatch.setattr(recipes, "_sort_test", lambda: small_test)
    r = recipes.get("sort-gpt")
    monkeypatch.setitem(recipes.RECIPES, "sort-gpt", dataclasses.replace(r, data=recipes._sort_train,
                                                                         test_data=recipes._sort_test))
    assert main(["train", "--quiet", "--example", "sort-gpt", "--epochs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    train, test = (next(line for line in lines if line.startswith(f"{split} sorted correctly (greedy): "))
                   for split in ("train", "test"))
    assert train.endswith("/128)")
    assert test.endswith("/50)")
