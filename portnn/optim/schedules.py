"""Learning-rate schedules: config-only objects whose ``lr(base_lr, t)`` is a closed-form Python float on the host.

A schedule holds no state and touches no arrays: the t-th step or epoch (``interval``; t = 0 is the first) gets
``lr(base_lr, t)``, with torch.optim.lr_scheduler's numbers (torch computes most of them recursively, so they agree
to rounding, not bit for bit). Every argument is checked whenever it is set, as the optimizers' hyper-parameters
are, and ``config()`` with the class name (``SCHEDULES``) rebuilds the schedule from a checkpoint
(``schedule_from_config``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from ..array.validation import COUNT, INDEX, NON_NEGATIVE, POSITIVE, Checked, Choice, Number, Rule

SCHEDULES: dict[str, type[Schedule]] = {}  # every public Schedule subclass by class name (for checkpoints)
INTERVALS = ("step", "epoch")
_ABSTRACT = ("Schedule is a base class; use StepLR, ExponentialLR, CosineAnnealing or subclass it and implement "
             "_lr(base, t)")


class Schedule(Checked):
    """Base class: ``lr(base_lr, t)`` for the t-th step or epoch (``interval``), arguments checked when set (each
    subclass's ``constraints``)."""

    interval: str
    constraints: ClassVar[dict[str, Rule]] = {"interval": Choice(*INTERVALS)}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            SCHEDULES[cls.__name__] = cls

    def __init__(self, interval: str = "epoch") -> None:
        if type(self)._lr is Schedule._lr:  # refused here, not when fit reaches its first learning rate
            raise TypeError(_ABSTRACT if type(self) is Schedule else
                            f"{type(self).__name__} does not implement _lr(base, t), the learning rate of the t-th "
                            "step or epoch; a Schedule subclass must")
        self.interval = interval

    def lr(self, base_lr: float, t: int) -> float:
        """The learning rate of the t-th step or epoch (t = 0 is the first) for an optimizer built with ``base_lr``."""
        owner = f"{type(self).__name__}.lr"
        base, step = POSITIVE(base_lr, "base_lr", owner), INDEX(t, "t", owner)
        try:
            return self._lr(base, step)
        except OverflowError:  # a growing rate (gamma > 1) past float range: training then fails as for any inf
            return math.inf

    def _lr(self, base: float, t: int) -> float:
        """``lr`` for arguments already checked."""
        raise NotImplementedError(_ABSTRACT)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able), for saving the schedule in a checkpoint with its class name."""
        return {"interval": self.interval}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


class StepLR(Schedule):
    """base * gamma ** (t // step_size): decay by ``gamma`` every ``step_size`` steps or epochs (torch's StepLR)."""

    def __init__(self, step_size: int, gamma: float = 0.1, interval: str = "epoch") -> None:
        super().__init__(interval)
        self.step_size, self.gamma = step_size, gamma

    # gamma > 0: an optimizer's lr must stay positive; > 1 grows, as torch allows
    constraints: ClassVar[dict[str, Rule]] = {**Schedule.constraints, "step_size": COUNT, "gamma": POSITIVE}

    def _lr(self, base: float, t: int) -> float:
        return base * self.gamma ** (t // self.step_size)

    def config(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma, **super().config()}


class ExponentialLR(Schedule):
    """base * gamma ** t: decay by ``gamma`` every step or epoch (torch's ExponentialLR)."""

    def __init__(self, gamma: float, interval: str = "epoch") -> None:
        super().__init__(interval)
        self.gamma = gamma

    constraints: ClassVar[dict[str, Rule]] = {**Schedule.constraints, "gamma": POSITIVE}

    def _lr(self, base: float, t: int) -> float:
        return base * self.gamma ** t

    def config(self) -> dict[str, Any]:
        return {"gamma": self.gamma, **super().config()}


class CosineAnnealing(Schedule):
    """Linear warm-up from ``warmup_start_factor * base`` to base over the first ``warmup`` steps or epochs, then
    cosine annealing from base to ``eta_min`` over the remaining ``total - warmup``.

    With w = warmup, T = total - w:
      t < w:  base * (f + (1 - f) * t / w)                       (torch's LinearLR, start_factor=f, end_factor=1)
      t >= w: eta_min + (base - eta_min) * (1 + cos(pi * (t - w) / T)) / 2    (torch's CosineAnnealingLR, T_max=T)
    which is torch's SequentialLR([LinearLR(opt, f, 1.0, w), CosineAnnealingLR(opt, T, eta_min)], milestones=[w])
    and plain CosineAnnealingLR(opt, total, eta_min) for warmup=0 (f is then unused). ``warmup_start_factor`` is a
    factor of base in (0, 1], as LinearLR's start_factor (default 1/3, LinearLR's).

    Beyond ``total`` the cosine goes on, as torch's: it is periodic with period 2T, rising back from eta_min at
    t = total to base at t = total + T. t = total (and every total + 2kT) gives exactly eta_min, so with the
    default eta_min = 0 that learning rate is 0: run for at most ``total`` steps or epochs (t < total) or set
    eta_min > 0 where the optimizer needs a positive rate."""

    def __init__(self, total: int, warmup: int = 0, eta_min: float = 0.0, warmup_start_factor: float = 1.0 / 3,
                 interval: str = "epoch") -> None:
        super().__init__(interval)
        self.total, self.warmup, self.eta_min, self.warmup_start_factor = total, warmup, eta_min, warmup_start_factor

    constraints: ClassVar[dict[str, Rule]] = {**Schedule.constraints, "total": COUNT, "warmup": INDEX,
                                              "eta_min": NON_NEGATIVE,
                                              "warmup_start_factor": Number(0.0, 1.0, low_open=True, high_open=False)}

    def _relations(self, changed: str) -> None:
        total, warmup = getattr(self, "total", None), getattr(self, "warmup", 0)
        if total is not None and warmup >= total:
            if changed == "warmup":
                raise ValueError(f"CosineAnnealing: warmup must be < total ({total}), got {warmup!r}")
            raise ValueError(f"CosineAnnealing: total must be > warmup ({warmup}), got {total!r}")

    def _lr(self, base: float, t: int) -> float:
        w = self.warmup
        if t < w:
            f = self.warmup_start_factor
            return base * (f + (1.0 - f) * t / w)
        # torch's closed form (CosineAnnealingLR._get_closed_form_lr), term for term
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * (t - w) / (self.total - w))) / 2

    def config(self) -> dict[str, Any]:
        return {"total": self.total, "warmup": self.warmup, "eta_min": self.eta_min,
                "warmup_start_factor": self.warmup_start_factor, **super().config()}


def schedule_from_config(name: str, config: dict[str, Any]) -> Schedule:
    """The schedule saved as (class name, ``config()``), e.g. from a checkpoint; ValueError naming it if either is
    wrong."""
    cls = SCHEDULES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown learning-rate schedule {name!r}; known: {', '.join(sorted(SCHEDULES))}")
    if not isinstance(config, dict):
        raise ValueError(f"schedule {name}: config must be a dict of constructor arguments, got "
                         f"{type(config).__name__}")
    try:
        return cls(**config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"schedule {name}: bad config {config!r}: {err}") from err
