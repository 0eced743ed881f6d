"""The parity engine: runs observed step by step are exactly the runs a user gets from ``fit``, and --trace names
the first step and layer that leave the tolerance (checked with a step tampered with on purpose)."""

from __future__ import annotations

from dataclasses import replace

import array_api_compat
import numpy as np
import pytest

from portnn import SGD, backends, host, recipes
from portnn.parity.check import Tracer, compute_reference, run_parity
from portnn.parity.report import render
from portnn.parity.run import Problem, Target, parse_targets, train


@pytest.mark.parametrize(("backend", "device"), [("numpy", "cpu"), ("array_api_strict", "device1")])
def test_observed_run_is_exactly_a_plain_fit(backend: str, device: str) -> None:
    if not backends.get(backend).installed():
        pytest.skip(f"{backend} is not installed")
    problem = Problem.from_recipe("mlp", seed=3, epochs=4)
    snaps: list[dict[str, np.ndarray]] = []

    def record(_step: int, _loss: float, weights: dict[str, np.ndarray] | None) -> None:
        assert weights is not None  # snapshots=True: the weights after every step
        snaps.append(weights)

    run = train(problem, Target(backend, device, "float32"), on_step=record, snapshots=True)
    xp, dev = backends.load(backend, device)
    net = problem.recipe.model(3).to(xp, dev, "float32")
    history = net.fit(host.from_numpy(problem.X, xp, device=dev, dtype=None),
                      host.from_numpy(problem.y, xp, device=dev, dtype=None), loss=problem.recipe.loss(),
                      optimizer=problem.recipe.optimizer(problem.lr), epochs=4, batch_size=problem.batch_size)
    assert run.steps == len(snaps) == 16  # 4 epochs x 4 batches of 16
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(run.final[key], value)
        np.testing.assert_array_equal(snaps[-1][key], value)
    assert not np.array_equal(snaps[0]["0.weight"], snaps[1]["0.weight"]), "snapshots are taken after every step"
    # the last epoch's mean loss from fit equals the mean of the recorded losses of its 4 equal batches
    assert np.mean(run.losses[-4:]) == pytest.approx(history[-1], rel=1e-6)


class TamperedSGD(SGD):
    """SGD that, on array_api_strict only, nudges layer 2's weight by 1e-9 at step 7 (a planted parity bug)."""

    def update(self, params, grads, state, lr=None):
        new, state = super().update(params, grads, state, lr)
        self.steps = getattr(self, "steps", 0) + 1
        w = new[2]["weight"]
        if self.steps == 7 and array_api_compat.is_array_api_strict_namespace(array_api_compat.array_namespace(w)):
            new[2] = {**new[2], "weight": w + 1e-9}
        return new, state


def test_trace_names_the_tampered_step_and_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("array_api_strict")
    monkeypatch.setitem(recipes.RECIPES, "tampered", replace(recipes.get("mlp"), name="tampered",
                                                             optimizer=TamperedSGD))
    problem = Problem.from_recipe("tampered", epochs=3)
    targets = parse_targets("numpy,array_api_strict:device1", ("float64",))
    traced = run_parity(problem, targets, trace=True)
    rows = {r.target.backend: r for r in traced.rows}
    assert rows["numpy"].passed
    bad = rows["array_api_strict"]
    assert not bad.passed
    assert bad.first_bad is not None
    assert bad.first_bad["step"] == 7
    assert bad.first_bad["layer"] == "2.weight"
    assert bad.first_bad["diff"] == pytest.approx(1e-9, rel=1e-3)
    assert "FAIL array_api_strict-device1-float64: leaves tolerance 0.0e+00 at step 7 of 12 in 2.weight" in render(
        traced)
    # without --trace only the losses are compared step by step: the bug shows one step later, in the loss
    plain = run_parity(problem, targets)
    first = {r.target.backend: r for r in plain.rows}["array_api_strict"].first_bad
    assert first is not None
    assert first["step"] == 8
    assert first["layer"] == "loss"


def test_tracer_reports_a_longer_run_and_stops_at_the_first_failure() -> None:
    problem = Problem.from_recipe("seed", epochs=3)
    ref = compute_reference(problem, ("float64",), trace=True)
    assert len(ref.snapshots["float64"]) == 3
    tracer = Tracer(ref, "float64", 1e-12)
    w = ref.snapshots["float64"][0]
    tracer(1, ref.losses["float64"][0], w)
    passed = tracer.first
    assert passed is None
    tracer(2, ref.losses["float64"][1] + 1e-6, ref.snapshots["float64"][1])
    first = tracer.first
    assert first is not None
    assert first["step"] == 2
    assert first["layer"] == "loss"
    tracer(3, 0.0, w)  # later steps do not overwrite the first failure
    assert tracer.first is not None
    assert tracer.first["step"] == 2
    longer = Tracer(ref, "float64", 1e-12)
    longer(4, 0.0, None)
    assert longer.first is not None
    assert longer.first["layer"] == "steps"


def test_a_run_with_another_step_count_fails_and_the_report_stays_valid_json() -> None:
    import json

    problem = Problem.from_recipe("seed", epochs=5)
    ref = compute_reference(problem, ("float64",))
    shorter = replace(problem, epochs=4)
    report = run_parity(shorter, [Target("numpy", "cpu", "float64")], reference=ref)
    row = report.rows[0]
    assert not row.passed
    assert row.first_bad is not None
    assert row.first_bad["layer"] == "steps"
    assert "4 steps, the reference has 5" in render(report)
    data = json.loads(json.dumps(report.as_dict(), allow_nan=False))
    assert data["rows"][0]["first_bad"]["diff"] is None
    assert data["passed"] is False
