"""Optimizers as pure updates: new parameters and state are built, never written in place (JAX arrays are immutable).

Parameters, gradients and state are keyed by (layer index, name), never by ``id()``. A state entry maps slot names
to arrays in the parameters' namespace, on their device, in their dtype ('velocity'; 'm', 'v'), plus Python int
step counters ('step'), so bias corrections are Python floats, identical on every backend. The state belongs to the
model being trained (``Sequential.optimizer_state``), never to the optimizer object.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

Key = tuple[int, str]
State = dict[Key, dict[str, Any]]


def _number(owner: str, name: str, value: Any, low: float, high: float = math.inf, *, low_open: bool = False,
            high_open: bool = True) -> float:
    """``value`` as a Python float (never a NumPy scalar, which would promote float32), inside the given range."""
    if isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}") from err
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if not math.isfinite(number) or too_low or too_high:
        if high == math.inf:
            where = f"{'>' if low_open else '>='} {low:g}"
        else:
            where = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: {name} must be a finite number {where}, got {value!r}")
    return number


def _positive(owner: str, name: str, value: Any) -> float:
    return _number(owner, name, value, 0.0, low_open=True)


class Optimizer:
    """Base class: hyper-parameters only (the state of each model's training lives on that model, so one optimizer
    may serve several models). ``update`` is pure; the model commits its result. Every hyper-parameter is checked
    and coerced (to a Python float) whenever it is set, in the constructor or later (``opt.lr = 0.01``)."""

    def _check(self, name: str, value: Any) -> Any:
        """The checked value of hyper-parameter ``name`` (unknown names pass through unchanged)."""
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, self._check(name, value))

    def init_state(self, params: dict[Key, Any], xp: Any, device: Any) -> State:
        """Fresh state for ``params``: zero slots with each parameter's shape and dtype, on ``device``."""
        return {}

    def slot_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(array slots, integer counters) that ``init_state`` gives every parameter, e.g. (('m', 'v'), ('step',))."""
        return (), ()

    def update(self, params: dict[Key, Any], grads: dict[Key, Any], state: State) -> tuple[dict[Key, Any], State]:
        """Return (new params, new state) for one step; inputs are left untouched."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Constructor arguments, for saving the optimizer in a checkpoint as JSON."""
        return {}

    def _decayed(self, params: dict[Key, Any], grads: dict[Key, Any], weight_decay: float) -> dict[Key, Any]:
        """Gradients with L2 weight decay added (g + wd * p), as PyTorch's SGD and Adam do."""
        if weight_decay == 0.0:
            return grads
        return {k: grads[k] + weight_decay * p for k, p in params.items()}

    def _missing(self, key: Key) -> KeyError:
        return KeyError(f"{type(self).__name__}.update: no state for parameter {key}; "
                        "create it with init_state(params, xp, device)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum and L2 weight decay, as ``torch.optim.SGD``:
    g <- g + wd p;  v <- momentum v + g;  p <- p - lr (g + momentum v if nesterov else v)  (v = g without momentum)."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        if not isinstance(nesterov, bool):
            raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        if nesterov and not float(momentum) > 0.0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.lr, self.momentum, self.weight_decay, self.nesterov = lr, momentum, weight_decay, nesterov

    def _check(self, name: str, value: Any) -> Any:
        if name == "lr":
            return _positive("SGD", "lr", value)
        if name == "momentum":
            value = _number("SGD", "momentum", value, 0.0, 1.0)
            if value == 0.0 and getattr(self, "nesterov", False):
                raise ValueError("SGD: momentum must stay > 0 while nesterov=True")
            return value
        if name == "weight_decay":
            return _number("SGD", "weight_decay", value, 0.0)
        if name == "nesterov":
            if not isinstance(value, bool):
                raise TypeError(f"SGD: nesterov must be True or False, got {value!r}")
            if value and getattr(self, "momentum", 0.0) == 0.0:
                raise ValueError("SGD: nesterov=True needs momentum > 0")
        return value

    def slot_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return (("velocity",) if self.momentum else ()), ()

    def init_state(self, params: dict[Key, Any], xp: Any, device: Any) -> State:
        if self.momentum == 0.0:
            return {}
        return {k: {"velocity": xp.zeros(p.shape, dtype=p.dtype, device=device)} for k, p in params.items()}

    def update(self, params: dict[Key, Any], grads: dict[Key, Any], state: State) -> tuple[dict[Key, Any], State]:
        lr, mu = self.lr, self.momentum
        grads = self._decayed(params, grads, self.weight_decay)
        if mu == 0.0:
            return {k: p - lr * grads[k] for k, p in params.items()}, state
        new_params, new_state = {}, {}
        for k, p in params.items():
            if k not in state:
                raise self._missing(k)
            g = grads[k]
            v = mu * state[k]["velocity"] + g
            new_params[k] = p - lr * (g + mu * v if self.nesterov else v)
            new_state[k] = {"velocity": v}
        return new_params, new_state

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with optional L2 weight decay, as ``torch.optim.Adam``:
    m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)."""

    def __init__(self, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay

    def _check(self, name: str, value: Any) -> Any:
        if name in ("lr", "eps"):
            return _positive("Adam", name, value)
        if name == "betas":
            if not isinstance(value, tuple | list) or len(value) != 2:
                raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {value!r}")
            return (_number("Adam", "betas[0]", value[0], 0.0, 1.0), _number("Adam", "betas[1]", value[1], 0.0, 1.0))
        if name == "weight_decay":
            return _number("Adam", "weight_decay", value, 0.0)
        return value

    def slot_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("m", "v"), ("step",)

    def init_state(self, params: dict[Key, Any], xp: Any, device: Any) -> State:
        return {k: {"m": xp.zeros(p.shape, dtype=p.dtype, device=device),
                    "v": xp.zeros(p.shape, dtype=p.dtype, device=device), "step": 0} for k, p in params.items()}

    def update(self, params: dict[Key, Any], grads: dict[Key, Any], state: State) -> tuple[dict[Key, Any], State]:
        if not params:
            return {}, state
        xp = array_api_compat.array_namespace(next(iter(params.values())))  # for sqrt; once per step
        (b1, b2), lr, eps = self.betas, self.lr, self.eps
        grads = self._decayed(params, grads, self.weight_decay)
        new_params, new_state = {}, {}
        for k, p in params.items():
            if k not in state:
                raise self._missing(k)
            g, s = grads[k], state[k]
            t = s["step"] + 1
            m = b1 * s["m"] + (1.0 - b1) * g
            v = b2 * s["v"] + (1.0 - b2) * (g * g)
            step_size = lr / (1.0 - b1**t)  # Python floats: the same bias correction on every backend
            root_bias = math.sqrt(1.0 - b2**t)
            new_params[k] = p - step_size * (m / (xp.sqrt(v) / root_bias + eps))
            new_state[k] = {"m": m, "v": v, "step": t}
        return new_params, new_state

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.__name__: cls for cls in (SGD, Adam)}
