"""torch.compile traces the whole training step as one graph (issue 23, item 15): ``portnn train --example digits-cnn
--backend torch --compile`` traced 69 times, hit Dynamo's recompile limit in the windows' fold (``xpx.at(...).add``
breaks Dynamo's graph inside array-api-compat's ``is_jax_array``, and every kernel offset recompiled the rest) and
in ReLU (``maximum(x, 0.0)`` asks ``torch.result_type``), and printed about 200 lines of torch's warnings. Now: one
graph per batch shape, no warning, and a step that cannot be one graph is a one-line GraphBreak naming the layer.

Inductor's code generation takes seconds per graph on the CPU, so the fit tests compile with Dynamo only (the
graph runs as traced): what they check, graphs and traces, is Dynamo's work; test_compiled.py runs inductor."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import portnn  # noqa: E402
from portnn import backends  # noqa: E402
from portnn.array.compile import GraphBreak  # noqa: E402
from portnn.array.types import Array  # noqa: E402

pytestmark = [pytest.mark.torch,
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]  # torch's own deprecated APIs, not portnn's

P = portnn


def _t(values: Any, dtype: Any = None) -> Any:
    return torch.asarray(np.asarray(values), dtype=dtype)


RNG = np.random.default_rng(0)
IMG, FLAT, SEQ = (_t(RNG.normal(size=s), torch.float64) for s in ((4, 2, 6, 6), (4, 6), (4, 5, 3)))
# (layers after a first layer, so that their input gradient is computed; input; loss; targets)
STEPS: dict[str, tuple[list[portnn.Layer], Array, portnn.Loss, Array]] = {
    "ReLU": ([P.Dense(6, 3), P.ReLU()], FLAT, P.MSE(), _t(RNG.normal(size=(4, 3)))),
    "Softplus": ([P.Dense(6, 3), P.Softplus()], FLAT, P.MSE(), _t(RNG.normal(size=(4, 3)))),
    "ELU": ([P.Dense(6, 3), P.ELU()], FLAT, P.MSE(), _t(RNG.normal(size=(4, 3)))),
    "BinaryCrossEntropy": ([P.Dense(6, 3)], FLAT, P.BinaryCrossEntropy(), _t(RNG.random(size=(4, 3)))),
    "SoftmaxCrossEntropy(ignore_index)": ([P.Dense(3, 3)], SEQ, P.SoftmaxCrossEntropy(ignore_index=0),
                                          _t(RNG.integers(0, 3, size=(4, 5)))),
    "Conv2D": ([P.Conv2D(2, 2, 1), P.Conv2D(2, 3, 3, padding=1), P.Flatten()], IMG, P.MSE(),
               _t(RNG.normal(size=(4, 108)))),
    "Conv2D stride 2": ([P.Conv2D(2, 2, 1), P.Conv2D(2, 3, 3, stride=2), P.Flatten()], IMG, P.MSE(),
                        _t(RNG.normal(size=(4, 12)))),
    "MaxPool2D": ([P.Conv2D(2, 2, 1), P.MaxPool2D(2), P.Flatten()], IMG, P.MSE(), _t(RNG.normal(size=(4, 18)))),
    "AvgPool2D": ([P.Conv2D(2, 2, 1), P.AvgPool2D(2), P.Flatten()], IMG, P.MSE(), _t(RNG.normal(size=(4, 18)))),
}


@pytest.mark.filterwarnings("ignore:Dynamo detected:UserWarning")  # (TorchCompiler silences it for fits)
@pytest.mark.parametrize("name", list(STEPS))
def test_the_step_of_each_layer_is_one_graph(name: str) -> None:
    layers, X, loss, y = STEPS[name]
    backends.load("torch")
    net = P.Sequential(*layers, seed=0)
    net.fit(X, y, loss=loss, optimizer=P.Adam(0.01), epochs=1, compile=False)  # placed, with its loss
    torch._dynamo.reset()
    explained = torch._dynamo.explain(net.step(loss).gradients)(net.params, net.state, X, y,
                                                                (torch.asarray(0), torch.asarray(0)))
    assert explained.graph_break_count == 0, [r.reason.splitlines()[0] for r in explained.break_reasons]
    assert explained.graph_count == 1


@pytest.fixture
def dynamo_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """TorchCompiler's graphs run as Dynamo traced them (no inductor code generation: seconds per graph)."""
    from torch._inductor import compile_fx

    monkeypatch.setattr(compile_fx, "compile_fx", lambda graph, _inputs: graph.forward)
    torch._dynamo.reset()


def _cnn() -> portnn.Sequential:
    return P.Sequential(P.Conv2D(1, 4, 3, padding=1), P.ReLU(), P.MaxPool2D(2), P.Conv2D(4, 4, 3, padding=1),
                        P.ReLU(), P.AvgPool2D(2), P.Flatten(), P.Dense(4, 3), seed=3)


def test_a_cnn_fit_traces_once_per_batch_shape_without_warnings(dynamo_only: None,
                                                                 recwarn: pytest.WarningsRecorder) -> None:
    rng = np.random.default_rng(1)
    X, y = _t(rng.normal(size=(20, 1, 4, 4))), _t(rng.integers(0, 3, size=20))
    nets = []
    for compile in (False, True):
        net = _cnn()
        net.fit(X, y, loss=P.SoftmaxCrossEntropy(), optimizer=P.Adam(0.01), epochs=3, batch_size=8,
                compile=compile)
        nets.append(net)
    eager, compiled = nets
    # batches of 8 and the last one of 4: two graphs for the whole fit (it was a graph per piece between the
    # breaks, again for every shape, until the recompile limit)
    assert compiled.compile_stats["traces"] == 2
    assert [str(w.message) for w in recwarn] == []  # torch's messages do not reach the user
    for key, value in eager.state_dict().items():
        np.testing.assert_allclose(compiled.state_dict()[key], value, rtol=1e-12, atol=1e-15)


class ScalarMax(portnn.Layer):
    """ReLU as it was written: maximum(x, 0.0) breaks Dynamo's graph (array-api-compat asks torch.result_type)."""

    def forward(self, params: dict[str, Array], x: Array, ctx: Any) -> tuple[Array, Array]:
        return ctx.xp.maximum(x, 0.0), x

    def backward(self, params: dict[str, Array], x: Array, dy: Array, ctx: Any) -> tuple[Array | None, dict]:
        return dy * ctx.xp.astype(x > 0.0, dy.dtype), {}


def test_a_step_that_is_not_one_graph_is_refused_in_one_line_naming_the_layer(dynamo_only: None) -> None:
    net = P.Sequential(P.Dense(6, 3), ScalarMax(), seed=0)
    before = net.state_dict()
    y = _t(RNG.normal(size=(4, 3)))
    with pytest.raises(GraphBreak) as info:
        net.fit(FLAT, y, loss=P.MSE(), optimizer=P.SGD(0.1), epochs=2, compile=True)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("torch.compile cannot trace the step as one graph: ScalarMax.forward "
                              "(tests/train/test_torch_compile.py:")
    assert message.endswith("train with compile=False (TORCH_LOGS=graph_breaks shows the details)")
    assert info.value.__cause__ is None  # not torch's pages under it
    assert net.placement is None  # as before the call: not placed, nothing trained
    for key, value in before.items():
        np.testing.assert_array_equal(net.state_dict()[key], value)
    eager = net.fit(FLAT, y, loss=P.MSE(), optimizer=P.SGD(0.1), epochs=2, compile=False)
    assert len(eager) == 2  # eagerly it trains
