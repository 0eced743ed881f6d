"""A fitted Sequential as plain picklable data, and back: what a pickled estimator holds in place of its model.

A placed model refers to its namespace module, device objects and compiled functions, none of which pickle; its
layers, loss and optimizer hold configuration only and pickle as they are. The snapshot keeps those, the weights
and layer state (``state_dict``) and the optimizer state as host NumPy arrays, and the training counters, so an
unpickled estimator predicts the same and ``partial_fit`` continues with the same optimizer state and shuffles."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..array import host, tree
from ..train import Sequential
from ..train.state import TrainingState

FORMAT = "portnn-sklearn-model-2"


def freeze(net: Sequential) -> dict[str, Any]:
    """``net`` as a dict of layers, settings and host arrays (the model is not changed)."""
    dtype = net.placement.dtype_name if net.placement is not None else net.dtype
    arrays = tree.map(host.to_numpy, net.training.arrays())
    return {"format": FORMAT, "layers": list(net.layers), "seed": net.seed, "dtype": dtype, "info": net.info,
            "training": net.training.with_arrays(arrays)}


def thaw(frozen: dict[str, Any]) -> Sequential:
    """The model ``freeze`` described, on the host until placed (``to(...)`` or its first use moves everything,
    optimizer state included); nothing is drawn."""
    if not isinstance(frozen, dict) or frozen.get("format") != FORMAT:
        raise ValueError(f"portnn.sklearn: cannot restore a model from {type(frozen).__name__} (expected a "
                         f"{FORMAT!r} snapshot)")
    training: TrainingState = frozen["training"]
    weights = {**tree.flatten(training.params), **tree.flatten(training.state)}
    net = Sequential.from_state_dict(*frozen["layers"], state=weights, seed=frozen["seed"], dtype=frozen["dtype"])
    net.training = replace(training, params=net.params, state=net.state)
    net.info = frozen["info"]
    return net
