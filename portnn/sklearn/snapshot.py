"""A fitted Sequential as plain picklable data, and back: what a pickled estimator holds in place of its model.

A placed model refers to its namespace module, device objects and compiled functions, none of which pickle; its
layers, loss and optimizer hold configuration only and pickle as they are. The snapshot keeps those, the weights
and layer state (``state_dict``) and the optimizer state as host NumPy arrays, and the training counters, so an
unpickled estimator predicts the same and ``partial_fit`` continues with the same optimizer state and shuffles."""

from __future__ import annotations

from typing import Any

from ..array import host
from ..optim import OptState
from ..train import Sequential

FORMAT = "portnn-sklearn-model-1"
_COUNTERS = ("loss", "optimizer", "metrics", "schedule", "schedule_t", "clip_norm", "shuffle_seed", "epoch",
             "history", "info")


def freeze(net: Sequential) -> dict[str, Any]:
    """``net`` as a dict of layers, settings and host arrays (the model is not changed)."""
    dtype = net.placement.dtype_name if net.placement is not None else net.dtype
    optimizer_state = {slot: [{n: host.to_numpy(a) for n, a in layer.items()} for layer in value]
                       if isinstance(value, list) else host.to_numpy(value)
                       for slot, value in net.optimizer_state.items()}
    return {"format": FORMAT, "layers": list(net.layers), "seed": net.seed, "dtype": dtype,
            "weights": net.state_dict(), "optimizer_state": optimizer_state,
            **{name: getattr(net, name) for name in _COUNTERS}}


def thaw(frozen: dict[str, Any]) -> Sequential:
    """The model ``freeze`` described, on the host until placed (``to(...)`` or its first use moves everything,
    optimizer state included); nothing is drawn."""
    if not isinstance(frozen, dict) or frozen.get("format") != FORMAT:
        raise ValueError(f"portnn.sklearn: cannot restore a model from {type(frozen).__name__} (expected a "
                         f"{FORMAT!r} snapshot)")
    net = Sequential.from_state_dict(*frozen["layers"], state=frozen["weights"], seed=frozen["seed"],
                                     dtype=frozen["dtype"])
    opt_state: OptState = dict(frozen["optimizer_state"])
    net.optimizer_state = opt_state
    for name in _COUNTERS:
        setattr(net, name, frozen[name])
    return net
