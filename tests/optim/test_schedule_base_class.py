"""``Schedule`` is a base class (issue 23): constructing it, or a subclass that does not implement ``_lr``, is a
TypeError saying what to use instead, before any training (fit used to fail mid-way with a bare
NotImplementedError)."""

from __future__ import annotations

import numpy as np
import pytest

import portnn
from portnn.optim.schedules import Schedule


class _Forgot(Schedule):
    """A subclass that does not implement ``_lr``."""


class _Halving(Schedule):
    def _lr(self, base: float, t: int) -> float:
        return base * 0.5 ** t


def test_the_base_class_is_refused_at_construction() -> None:
    with pytest.raises(TypeError, match=r"Schedule is a base class; use StepLR, ExponentialLR, CosineAnnealing or "
                                        r"subclass it and implement _lr\(base, t\)"):
        portnn.Schedule()


def test_a_subclass_without_lr_is_refused_at_construction() -> None:
    with pytest.raises(TypeError, match=r"_Forgot does not implement _lr\(base, t\)"):
        _Forgot()


def test_a_subclass_with_lr_trains() -> None:
    net = portnn.Sequential(portnn.Dense(2, 1))
    net.fit(np.ones((4, 2)), np.ones((4, 1)), loss=portnn.MSE(), optimizer=portnn.SGD(0.1), epochs=2,
            schedule=_Halving())
    assert net.schedule_t == 2
