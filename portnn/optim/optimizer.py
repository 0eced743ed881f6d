"""The optimizer contract: hyper-parameters only, checked whenever set; ``update`` is pure and its state is arrays.

Parameters and gradients are trees: a list with one {name: array} per layer. The state is a dict of arrays and
trees ('velocity'; 'm', 'v' and Adam's step counter), owned by the model being trained (``Sequential.
optimizer_state``), never by the optimizer object, so one optimizer can serve several models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..array import tree
from ..array.types import Device, Namespace, Params
from ..array.validation import Checked

OptState = dict[str, Any]  # slot name -> a tree shaped like the parameters, or a 0-d array (Adam's 'step')
OPTIMIZERS: dict[str, type[Optimizer]] = {}  # every public Optimizer subclass by class name (for checkpoints)


def zeros_like(params: Params, xp: Namespace, device: Device) -> Params:
    """A tree of zeros shaped, typed and placed like ``params``."""
    return tree.zeros_like(params, xp, device)


def decayed(params: Params, grads: Params, weight_decay: float) -> Params:
    """Gradients with L2 weight decay added (g + wd * p), as PyTorch's SGD and Adam do."""
    if weight_decay == 0.0:
        return grads
    return tree.map(lambda p, g: g + weight_decay * p, params, grads)


class Optimizer(Checked):
    """Base class. Every hyper-parameter is checked and coerced (to a Python float) whenever it is set, in the
    constructor or later (``opt.lr = 0.01``), by the subclass's ``constraints``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            OPTIMIZERS[cls.__name__] = cls

    def bind(self, layers: Sequence[Any]) -> Optimizer:
        """Tell the optimizer which layers the parameter trees it will update belong to (one per tree entry), for
        rules by layer type (AdamW's weight decay); the trainer calls it once per fit. Nothing by default."""
        return self

    def slot_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(slots shaped like the parameters, 0-d counters) ``init_state`` creates, e.g. (('m', 'v'), ('step',))."""
        return (), ()

    def init_state(self, params: Params, xp: Namespace, device: Device) -> OptState:
        """Fresh state for ``params``: zero slots with each parameter's shape and dtype, on ``device``."""
        return {}

    def update(self, params: Params, grads: Params, state: OptState, lr: Any = None) -> tuple[Params, OptState]:
        """(new parameters, new state) for one step; the inputs are left untouched. ``lr`` (a Python float or a
        0-d array: a schedule's rate for this step) replaces ``self.lr`` for this step (None: ``self.lr``).
        Subclasses implement ``_update``; a tree that does not fit is then named by ``_check_trees``."""
        try:
            return self._update(params, grads, state, getattr(self, "lr", None) if lr is None else lr)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            self._check_trees(params, grads, state)  # names the parameter and the missing slot, if that is it
            raise

    def _update(self, params: Params, grads: Params, state: OptState, lr: Any) -> tuple[Params, OptState]:
        """``update`` at rate ``lr``, with trees already known to fit."""
        raise NotImplementedError

    def _check_trees(self, params: Params, grads: Params, state: OptState) -> None:
        """Raise unless ``grads`` and every slot of ``state`` cover each parameter (``_tree_error`` names what is
        wrong); run by ``update`` only when it failed, so a correct step pays nothing for it."""
        slots, counters = self.slot_names()
        try:
            trees = [grads, *[state[s] for s in slots]]
            for c in counters:
                if c not in state:
                    raise KeyError(c)
            for tree in trees:
                if len(tree) != len(params):
                    raise ValueError(tree)
            for i, layer in enumerate(params):
                names = layer.keys()
                for tree in trees:
                    if not names <= tree[i].keys():
                        raise KeyError(i)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            raise self._tree_error(params, grads, state) from None

    def _tree_error(self, params: Any, grads: Any, state: Any) -> Exception:
        """The exception naming the first problem: a tree that is not a list of dicts (TypeError), a tree with another
        number of layers (ValueError), a parameter without a gradient or a state slot (KeyError)."""
        owner = f"{type(self).__name__}.update"
        for what, given in (("params", params), ("grads", grads)):
            if not isinstance(given, list | tuple):
                return TypeError(f"{owner}: {what} must be a list with one {{name: array}} per layer, got "
                                 f"{type(given).__name__}")
            for i, layer in enumerate(given):
                if not isinstance(layer, dict):
                    return TypeError(f"{owner}: {what}[{i}] must be a {{name: array}} dict, got {type(layer).__name__}")
        if not isinstance(state, dict):
            return TypeError(f"{owner}: state must be the dict made by init_state(params, xp, device), got "
                             f"{type(state).__name__}")
        slots, counters = self.slot_names()
        trees = {"grads": grads, **{f"state slot {s!r}": state.get(s) for s in slots}}
        for what, given in trees.items():
            if isinstance(given, list | tuple) and len(given) != len(params):
                return ValueError(f"{owner}: {what} has {len(given)} layers but params have {len(params)}; it "
                                  "belongs to another model")
        for i, layer in enumerate(params):
            for n in layer:
                if n not in grads[i]:
                    return KeyError(f"{owner}: no gradient for parameter ({i}, {n!r})")
                absent = [s for s in slots if not isinstance(state.get(s), list | tuple)
                          or not isinstance(state[s][i], dict) or n not in state[s][i]]
                absent += [c for c in counters if c not in state]
                if absent:
                    return KeyError(f"{owner}: no state for parameter ({i}, {n!r}); create it with "
                                    f"init_state(params, xp, device) (missing {', '.join(map(repr, absent))})")
        return KeyError(f"{owner}: state has slots {sorted(state)} but needs {[*slots, *counters]}; create it with "
                        "init_state(params, xp, device)")  # a model without parameters, with a foreign state

    def config(self) -> dict[str, Any]:
        """Constructor arguments, for saving the optimizer in a checkpoint as JSON."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"

