"""Smoke test of the benchmark suite at tiny sizes: every section runs and produces consistent rows (never a speed
threshold: timings on a shared CI machine say nothing)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from portnn import bench, bench_memory, bench_mlp, bench_seed, cli
from portnn.bench_runtime import load_runtime


def test_mlp_flop_count_matches_the_issue():
    assert bench_mlp.MLPSpec().flops() == pytest.approx(72.7e9, rel=1e-3)
    # 2 layers 3->4->2, 5 samples: forward + weight grads 2*2*(12+8), input grad of layer 2 only 2*8
    assert bench_mlp.MLPSpec(widths=(3, 4, 2), samples=5).flops() == 5 * (2 * 2 * (12 + 8) + 2 * 8)


def test_hand_written_loops_do_the_same_math_as_portnn():
    """The references must train the same net: after one epoch from the same weights and batch order, the losses
    agree (so a speed ratio compares like with like)."""
    rt = load_runtime("numpy")
    spec = bench_mlp.MLPSpec(widths=(20, 16, 16, 4), samples=96, batch=32)
    X, y = spec.data()
    weights = bench_mlp.host_weights(spec.model())
    mine = bench_mlp.portnn_epoch(rt, spec, X, y)
    ours = [mine() for _ in range(2)]
    hand = bench_mlp.hand_epoch(np, spec, X, y, weights)
    theirs = [hand() for _ in range(2)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)  # float32 rounding of differently ordered sums
    seed_ours = bench_seed.portnn_run(rt, 30)()
    np.testing.assert_allclose(bench_seed.hand_run(np, 30, read_loss=True)(), seed_ours, rtol=1e-12)
    assert bench_seed.flat_run(rt, 30)() == seed_ours  # the flat row is portnn's arithmetic exactly


def test_quick_suite_runs_every_section(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--threads", "1", "--repeats", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    sections = {r["section"] for r in result["rows"]}
    assert {"peak", "mlp", "seed", "cnn", "memory"} <= sections
    mlp = {r["name"]: r for r in result["rows"] if r["section"] == "mlp"}
    assert {"numpy", "portnn"} <= set(mlp)
    assert mlp["portnn"]["median_s"] > 0
    assert "numpy" in mlp["portnn"]["ratios"]
    assert mlp["portnn"]["peak_frac"] > 0
    assert result["meta"]["blas"]
    assert "OPENBLAS_CORETYPE" in result["meta"]["env"]
    assert {b["bar"] for b in result["bars"]} >= {"seed net portnn µs/iteration", "MLP epoch peak memory / theory"}
    assert "bars" in printed
    assert "matmul-only" in printed


def test_memory_theory_counts_data_params_grads_activations():
    spec = bench_mlp.MLPSpec(widths=(4, 3, 2), samples=10, batch=5)
    parts = bench_memory.theory_bytes(spec)
    assert parts["data"] == 10 * 4 * 4 + 10 * 8
    assert parts["params"] == parts["grads"] == (4 * 3 + 3 + 3 * 2 + 2) * 4
    assert parts["total"] == parts["data"] + 2 * parts["params"] + parts["activations"]


def test_bad_options_are_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--threads", "0"])
    assert cli.main(["bench", "--only", "nonsense"]) == 2
    assert "unknown sections" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no device 'cuda'"):
        bench.run_suite(bench.Options(backend="numpy", device="cuda"))
