"""Every backend of the matrix re-trains the golden problems (tests/golden/*.npz, made by `portnn parity
--save-golden`) from their stored initialisation and data, and ends within its tolerance of the stored NumPy result."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from portnn import backends
from portnn.parity.check import check
from portnn.parity.golden import load_golden
from portnn.parity.run import Target, scaled_diff

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@cache
def golden(name: str):
    return load_golden(GOLDEN / f"{name}.npz")


NAMES = ["seed", "mlp", "dropout-cnn", "resnet-lines", "tiny-gru", "tiny-gpt"]
STEPS = {"seed": 1500, "mlp": 200, "dropout-cnn": 30, "resnet-lines": 30, "tiny-gru": 32, "tiny-gpt": 32}
# last loss below this fraction of the first (resnet-lines: 2.1 -> 0.14, tiny-gru 0.97 -> 0.17, tiny-gpt 1.21 -> 0.36
# measured)
TRAINED = {"seed": 0.1, "mlp": 0.1, "dropout-cnn": 0.7, "resnet-lines": 0.3, "tiny-gru": 0.3, "tiny-gpt": 0.4}


@pytest.mark.parametrize("name", NAMES)
def test_golden_file_is_a_real_reference(name: str) -> None:
    problem, ref, meta = golden(name)
    assert meta["hyper"]["recipe"] == name
    assert set(ref.final) == {"float64", "float32"}
    assert len(ref.losses["float64"]) == len(ref.losses["float32"]) == STEPS[name]
    losses = ref.losses["float64"]
    assert losses[-1] < TRAINED[name] * losses[0], "the stored run must have trained"
    for key, w in ref.final["float64"].items():
        assert ref.final["float32"][key].dtype == np.float32
        assert np.max(np.abs(w - problem.init[key])) > 1e-2, f"{key} barely moved: parity against it would be vacuous"
        # NumPy float32 vs float64 on the machine that made the file: 2.2e-6 (seed), 3.6e-7 (mlp)
        assert 0 < scaled_diff(ref.final["float32"][key], w) < 1e-5
    assert meta["versions"]["packages"]["numpy"], "the file records the library versions it was made with"
    if name == "mlp":
        assert any(k.endswith("bias") for k in problem.init), "the MLP golden net has biases"
    if name == "dropout-cnn":  # its masks come from the Threefry generator: this file pins them across machines
        assert any(layer["type"] == "Dropout" for layer in meta["architecture"])
    if name == "resnet-lines":  # BatchNorm state, a residual block, a per-step schedule and clipping
        assert {"1.running_mean", "1.running_var", "3.1.running_var"} <= set(problem.init)
        assert "CosineAnnealing" in meta["hyper"]["controls"]
        assert "'clip_norm': 1.0" in meta["hyper"]["controls"]
    if name == "tiny-gru":  # backpropagation through time
        assert [layer["type"] for layer in meta["architecture"]] == ["GRU", "Dense"]
    if name == "tiny-gpt":  # embeddings, causal attention with its dropout, LayerNorm, GELU, dropout masks, AdamW
        types = str(meta["architecture"])
        assert all(t in types for t in ("Embedding", "PositionalEmbedding", "MultiHeadAttention", "LayerNorm", "GELU"))
        attention = meta["architecture"][3]["layers"][1]
        assert attention["type"] == "MultiHeadAttention"
        assert attention["causal"] is True
        assert attention["dropout"] == 0.1
        assert any(layer["type"] == "Dropout" for layer in meta["architecture"])
        assert meta["hyper"]["optimizer"].startswith("AdamW(")


@pytest.mark.parametrize("name", NAMES)
def test_backend_matches_golden(case, name: str) -> None:
    problem, ref, _ = golden(name)
    row = check(problem, Target(case.backend.name, case.device_name, case.dtype_name), ref)
    assert row.error is None, row.error  # array-api-strict: also bit-identical to NumPy run here, or an error
    exact_to = case.backend.exact_to  # bit-identity holds on one machine; the file was made on another
    assert row.tol == (backends.get(exact_to).tol(case.dtype_name, name) if exact_to else case.tol(name))
    assert row.steps == len(ref.losses[case.dtype_name])
    assert row.passed, (f"{case} vs golden {name}: max scaled weight diff {row.max_rel:.3e} in {row.worst_layer}, "
                        f"loss {row.loss_diff:.3e}, tolerance {row.tol:.0e}, first out {row.first_bad}")
    if case.dtype_name == "float32":  # float32 error from float64 no worse than NumPy float32's (measured 0.6x-1.0x)
        assert row.ratio is not None, row
        assert row.ratio < 10, row


def test_a_backend_exact_to_numpy_must_equal_numpy_here_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a golden file, array-api-strict is first compared with NumPy on this machine at tolerance 0: a run
    that differs from it in the last bit is a FAIL even though it is well within NumPy's tolerance of the file."""
    pytest.importorskip("array_api_strict")
    from portnn.parity import check as parity_check

    problem, ref, _ = golden("seed")
    real = parity_check.compute_reference

    def nudged(*args, **kwargs):  # NumPy 'here' one ulp away from what strict computes
        here = real(*args, **kwargs)
        for final in here.final.values():
            final["2.weight"] = np.nextafter(final["2.weight"], np.inf)
        return here

    monkeypatch.setattr(parity_check, "compute_reference", nudged)
    row = check(problem, Target("array_api_strict", "CPU_DEVICE", "float64"), ref)
    assert not row.passed
    assert row.error is not None
    assert "not bit-identical to numpy on this machine" in row.error
