"""Learning-rate schedules: equal to torch.optim.lr_scheduler step by step (also beyond CosineAnnealing's total),
closed-form Python floats, arguments checked whenever set, and rebuilt from their config as a checkpoint does."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from portnn.optim.schedules import SCHEDULES, CosineAnnealing, ExponentialLR, Schedule, StepLR, schedule_from_config

STEPS = 80  # CosineAnnealing(total=20) runs 4 times its total: down, up, down, up
BASES = (0.1, 0.5)


def _torch_sequential(warmup: int, cosine_steps: int, eta_min: float, factor: float) -> Callable[[Any], Any]:
    def make(opt: Any) -> Any:
        lrs = pytest.importorskip("torch").optim.lr_scheduler
        return lrs.SequentialLR(opt, [lrs.LinearLR(opt, start_factor=factor, end_factor=1.0, total_iters=warmup),
                                      lrs.CosineAnnealingLR(opt, T_max=cosine_steps, eta_min=eta_min)],
                                milestones=[warmup])
    return make


def _torch(name: str, **kwargs: Any) -> Callable[[Any], Any]:
    return lambda opt: getattr(pytest.importorskip("torch").optim.lr_scheduler, name)(opt, **kwargs)


# id: (our schedule, a maker of the torch scheduler for an optimizer)
PAIRS: dict[str, tuple[Callable[[], Schedule], Callable[[Any], Any]]] = {
    "step-7-0.5": (lambda: StepLR(7, 0.5), _torch("StepLR", step_size=7, gamma=0.5)),
    "step-1-0.9-per-step": (lambda: StepLR(1, 0.9, interval="step"), _torch("StepLR", step_size=1, gamma=0.9)),
    "step-default-gamma": (lambda: StepLR(10), _torch("StepLR", step_size=10)),
    "exp-0.95": (lambda: ExponentialLR(0.95), _torch("ExponentialLR", gamma=0.95)),
    "exp-0.7": (lambda: ExponentialLR(0.7, interval="step"), _torch("ExponentialLR", gamma=0.7)),
    "exp-1.01-growing": (lambda: ExponentialLR(1.01), _torch("ExponentialLR", gamma=1.01)),
    "cos-20": (lambda: CosineAnnealing(20), _torch("CosineAnnealingLR", T_max=20)),
    "cos-23-eta": (lambda: CosineAnnealing(23, eta_min=1e-3), _torch("CosineAnnealingLR", T_max=23, eta_min=1e-3)),
    "cos-1": (lambda: CosineAnnealing(1), _torch("CosineAnnealingLR", T_max=1)),
    "cos-25-warmup-5": (lambda: CosineAnnealing(25, warmup=5), _torch_sequential(5, 20, 0.0, 1 / 3)),
    "cos-30-warmup-7-eta-f0.1": (lambda: CosineAnnealing(30, warmup=7, eta_min=0.01, warmup_start_factor=0.1),
                                 _torch_sequential(7, 23, 0.01, 0.1)),
    "cos-2-warmup-1-f1": (lambda: CosineAnnealing(2, warmup=1, warmup_start_factor=1.0),
                          _torch_sequential(1, 1, 0.0, 1.0)),
    "cos-70-warmup-10-per-step": (lambda: CosineAnnealing(70, warmup=10, eta_min=1e-4, interval="step"),
                                  _torch_sequential(10, 60, 1e-4, 1 / 3)),
}


def torch_lrs(make: Callable[[Any], Any], base: float, steps: int) -> list[float]:
    """The lr torch's optimizer uses at each of ``steps`` steps: read, optimizer.step(), scheduler.step()."""
    torch = pytest.importorskip("torch")
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=base)
    with warnings.catch_warnings():  # torch may warn about the order of step() calls in its constructors
        warnings.simplefilter("ignore")
        scheduler = make(opt)
        out = []
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
    return out


def _rel(a: float, b: float) -> float:
    return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("name", PAIRS)
def test_equals_torch_lr_scheduler(name: str, base: float) -> None:
    make, make_torch = PAIRS[name]
    expected = torch_lrs(make_torch, base, STEPS)
    schedule = make()
    ours = [schedule.lr(base, t) for t in range(STEPS)]
    assert all(type(lr) is float for lr in ours)
    # torch multiplies step to step, we evaluate the closed form: measured max relative difference over 80 steps
    # 9.3e-15 (cos-20 near its minimum past total, where 1 + cos cancels; over 250 steps 4.9e-14 ours and 6.5e-14
    # torch's from the exact value, by mpmath), <= 7.5e-16 for StepLR and ExponentialLR
    worst = max(range(STEPS), key=lambda t: _rel(ours[t], expected[t]))
    assert _rel(ours[worst], expected[worst]) <= 1e-12, (worst, ours[worst], expected[worst])
    assert len(set(ours)) > 1  # the schedule changed the rate (cos-1 alternates base and 0)


def test_closed_form_values() -> None:
    """The numbers the formulas give, independently of torch."""
    assert [StepLR(3, 0.5).lr(1.0, t) for t in range(7)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    assert ExponentialLR(0.5).lr(2.0, 3) == 0.25
    cos = CosineAnnealing(12, warmup=4, eta_min=0.01, warmup_start_factor=0.2)
    assert [cos.lr(1.0, t) for t in range(5)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0], rel=1e-15)
    assert cos.lr(1.0, 8) == pytest.approx(0.01 + 0.99 / 2, rel=1e-15)  # half-way through the 8 cosine epochs
    assert cos.lr(1.0, 12) == pytest.approx(0.01, rel=1e-15)  # t = total: eta_min
    assert cos.lr(1.0, 20) == pytest.approx(1.0, rel=1e-15)  # periodic beyond total: back to base after 2T
    assert cos.lr(1.0, 13) == pytest.approx(cos.lr(1.0, 11), rel=1e-14)  # and symmetric about t = total
    assert CosineAnnealing(10).lr(0.3, 0) == 0.3  # no warm-up: starts at base
    assert CosineAnnealing(10).lr(0.3, 10) == 0.0


def test_lr_is_a_python_float_for_numpy_inputs() -> None:
    sched = StepLR(np.int64(2), np.float32(0.5))  # type: ignore[arg-type]
    assert type(sched.step_size) is int
    assert type(sched.gamma) is float
    lr = sched.lr(np.float64(0.1), np.int32(5))  # type: ignore[arg-type]
    assert type(lr) is float
    assert lr == 0.1 * 0.25


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: StepLR(0), ValueError, r"StepLR: step_size must be an int >= 1, got 0"),
    (lambda: StepLR(2.0),  # type: ignore[arg-type]
     TypeError, r"StepLR: step_size must be an int >= 1, got 2.0"),
    (lambda: StepLR(True), TypeError, r"StepLR: step_size must be an int >= 1, got True"),
    (lambda: StepLR(2, gamma=0.0), ValueError, r"StepLR: gamma must be a finite number > 0, got 0.0"),
    (lambda: StepLR(2, gamma=float("nan")), ValueError, r"StepLR: gamma must be a finite number > 0, got nan"),
    (lambda: StepLR(2, gamma="x"),  # type: ignore[arg-type]
     TypeError, r"StepLR: gamma must be a number, got 'x'"),
    (lambda: StepLR(2, interval="batch"), ValueError, r"StepLR: interval must be one of 'step', 'epoch', got 'batch'"),
    (lambda: ExponentialLR(-0.5), ValueError, r"ExponentialLR: gamma must be a finite number > 0, got -0.5"),
    (lambda: ExponentialLR(float("inf")), ValueError, r"ExponentialLR: gamma must be a finite number > 0"),
    (lambda: ExponentialLR(0.9, interval=None),  # type: ignore[arg-type]
     ValueError, r"ExponentialLR: interval must be one of 'step', 'epoch'"),
    (lambda: CosineAnnealing(0), ValueError, r"CosineAnnealing: total must be an int >= 1, got 0"),
    (lambda: CosineAnnealing(10.5),  # type: ignore[arg-type]
     TypeError, r"CosineAnnealing: total must be an int >= 1, got 10.5"),
    (lambda: CosineAnnealing(10, warmup=-1), ValueError, r"CosineAnnealing: warmup must be an int >= 0"),
    (lambda: CosineAnnealing(10, warmup=10), ValueError, r"CosineAnnealing: warmup must be < total \(10\), got 10"),
    (lambda: CosineAnnealing(10, eta_min=-1e-3), ValueError, r"CosineAnnealing: eta_min must be a finite number >= 0"),
    (lambda: CosineAnnealing(10, eta_min=float("inf")), ValueError, r"CosineAnnealing: eta_min must be a finite"),
    (lambda: CosineAnnealing(10, warmup=2, warmup_start_factor=0.0), ValueError,
     r"CosineAnnealing: warmup_start_factor must be a finite number in \(0, 1\], got 0.0"),
    (lambda: CosineAnnealing(10, warmup=2, warmup_start_factor=1.5), ValueError,
     r"CosineAnnealing: warmup_start_factor must be a finite number in \(0, 1\], got 1.5"),
    (lambda: CosineAnnealing(10, interval="Epoch"), ValueError, r"CosineAnnealing: interval must be one of 'step',"),
])
def test_bad_arguments_are_named(make: Callable[[], Schedule], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


def test_arguments_are_checked_when_set_later() -> None:
    cos = CosineAnnealing(10, warmup=3)
    with pytest.raises(ValueError, match=r"CosineAnnealing: total must be > warmup \(3\), got 3"):
        cos.total = 3
    with pytest.raises(ValueError, match=r"CosineAnnealing: warmup must be < total \(10\), got 12"):
        cos.warmup = 12
    cos.total, cos.warmup = 40, 20
    assert (cos.total, cos.warmup) == (40, 20)
    step = StepLR(5)
    with pytest.raises(ValueError, match=r"StepLR: gamma must be a finite number > 0, got 0"):
        step.gamma = 0
    with pytest.raises(ValueError, match=r"StepLR: interval must be one of 'step', 'epoch'"):
        step.interval = "steps"
    step.gamma = np.float64(0.5)
    assert type(step.gamma) is float
    assert step.config() == {"step_size": 5, "gamma": 0.5, "interval": "epoch"}


@pytest.mark.parametrize(("t", "base", "error", "message"), [
    (-1, 0.1, ValueError, r"StepLR.lr: t must be an int >= 0, got -1"),
    (1.0, 0.1, TypeError, r"StepLR.lr: t must be an int >= 0, got 1.0"),
    (1, 0.0, ValueError, r"StepLR.lr: base_lr must be a finite number > 0, got 0.0"),
    (1, float("nan"), ValueError, r"StepLR.lr: base_lr must be a finite number > 0, got nan"),
])
def test_bad_lr_arguments_are_named(t: Any, base: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        StepLR(2).lr(base, t)


def test_registry_names_every_schedule() -> None:
    assert sorted(SCHEDULES) == ["CosineAnnealing", "ExponentialLR", "StepLR"]
    assert SCHEDULES["CosineAnnealing"] is CosineAnnealing


@pytest.mark.parametrize("name", PAIRS)
def test_config_round_trip(name: str) -> None:
    """A checkpoint stores (class name, config()) as JSON; the rebuilt schedule gives the same lr for every t."""
    schedule = PAIRS[name][0]()
    saved = json.loads(json.dumps({"name": type(schedule).__name__, "config": schedule.config()}))
    rebuilt = schedule_from_config(saved["name"], saved["config"])
    assert type(rebuilt) is type(schedule)
    assert rebuilt is not schedule
    assert rebuilt.config() == schedule.config()
    assert repr(rebuilt) == repr(schedule)
    assert repr(schedule).startswith(f"{type(schedule).__name__}(")
    assert "interval=" in repr(schedule)
    for base in BASES:
        assert [rebuilt.lr(base, t) for t in range(200)] == [schedule.lr(base, t) for t in range(200)]


def test_repr_shows_the_arguments() -> None:
    assert repr(StepLR(3, 0.5, interval="step")) == "StepLR(step_size=3, gamma=0.5, interval='step')"
    assert repr(CosineAnnealing(10, warmup=2, warmup_start_factor=0.5)) == (
        "CosineAnnealing(total=10, warmup=2, eta_min=0.0, warmup_start_factor=0.5, interval='epoch')")


@pytest.mark.parametrize(("name", "config", "message"), [
    ("Cosine", {"total": 10},
     r"unknown learning-rate schedule 'Cosine'; known: CosineAnnealing, ExponentialLR, StepLR"),
    ("Schedule", {}, r"unknown learning-rate schedule 'Schedule'"),
    (None, {}, r"unknown learning-rate schedule None"),
    ("StepLR", {"step_size": 2, "decay": 0.5}, r"schedule StepLR: bad config .*unexpected keyword argument 'decay'"),
    ("StepLR", {}, r"schedule StepLR: bad config \{\}: .*missing 1 required positional argument: 'step_size'"),
    ("CosineAnnealing", {"total": 5, "warmup": 5},
     r"schedule CosineAnnealing: bad config .*warmup must be < total \(5\), got 5"),
    ("ExponentialLR", {"gamma": 0}, r"schedule ExponentialLR: bad config .*gamma must be a finite number > 0"),
    ("ExponentialLR", [0.9], r"schedule ExponentialLR: config must be a dict of constructor arguments, got list"),
])
def test_bad_saved_schedules_are_named(name: Any, config: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        schedule_from_config(name, config)



def test_a_growing_rate_past_float_range_is_inf_not_an_overflow_error() -> None:
    """gamma > 1 (torch allows it) for long enough overflows Python floats; the rate is then inf, so fit raises its
    FloatingPointError with the rollback instead of an internal OverflowError."""
    assert ExponentialLR(1.001).lr(0.1, 10**6) == math.inf
    assert StepLR(1, gamma=10.0).lr(0.1, 400) == math.inf
    assert ExponentialLR(1.001).lr(0.1, 10) == pytest.approx(0.1 * 1.001**10, rel=1e-15)
    import portnn

    x = np.random.default_rng(0).standard_normal((8, 2))
    net = portnn.Sequential(portnn.Dense(2, 1), seed=0)
    schedule = ExponentialLR(1.001)
    net.fit(x, x[:, :1], loss=portnn.MSE(), optimizer=portnn.SGD(0.01), schedule=schedule)
    before = net.state_dict()
    net.schedule_t = 10**6  # far along the same schedule
    with pytest.raises(FloatingPointError):
        net.fit(x, x[:, :1])
    assert all(np.array_equal(net.state_dict()[k], v) for k, v in before.items())
