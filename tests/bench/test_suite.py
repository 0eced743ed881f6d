"""Smoke test of the benchmark suite at tiny sizes: every section runs and produces consistent rows (never a speed
threshold: timings on a shared CI machine say nothing)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from portnn import cli
from portnn.bench import memory as bench_memory
from portnn.bench import mlp as bench_mlp
from portnn.bench import seed as bench_seed
from portnn.bench import suite as bench
from portnn.bench.runtime import load_runtime


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


def test_compiled_section_compares_the_same_math():
    """Every row of the compiled section trains the same net from the same weights in the same batch order: after
    two epochs the losses agree (float32 rounding of differently ordered sums), and the seed net's float64 loss
    after E steps is the same number for portnn (compiled and eager) and the hand-written lax.fori_loop."""
    pytest.importorskip("jax")
    from portnn.bench import cnn as bench_cnn
    from portnn.bench import compiled as bench_compiled
    from portnn.bench import gpt as bench_gpt

    spec = bench_mlp.MLPSpec(widths=(20, 16, 16, 4), samples=80, batch=32)  # a short last batch too
    gpt = bench_gpt.GPTSpec(samples=100, batch=32, dropout=0.0)  # dropout draws differ between libraries
    workloads = bench_compiled.runs(spec, bench_cnn.CNNSpec(samples=40, batch=16), 30, torch=True, spec_gpt=gpt)
    for section in ("mlp", "cnn", "sort-gpt"):
        losses = {name: [fn() for _ in range(2)] for name, fn in workloads[section].items()}
        reference = losses.pop("portnn numpy")
        assert set(losses) >= {"portnn jax (jit)", "hand jax.jit step", "torch eager"}
        for name, got in losses.items():
            np.testing.assert_allclose(got, reference, rtol=2e-5, err_msg=f"{section}: {name}")
    seed = workloads["seed"]
    after = bench_compiled.portnn_seed("jax", 31, True)  # its last recorded loss is the loss after 30 steps
    np.testing.assert_allclose(seed["hand jax lax.fori_loop"](), after(), rtol=1e-12)
    assert seed["portnn jax (jit)"]() == pytest.approx(seed["portnn numpy"](), rel=1e-12)


def test_the_gru_rows_compute_the_same_math():
    """portnn's GRU epoch and torch's nn.GRU from the same weights in the same batch order: the same losses."""
    pytest.importorskip("torch")
    from portnn.bench import gru as bench_gru

    rt = load_runtime("numpy")
    spec = bench_gru.GRUSpec(samples=100, steps=12, hidden=8, batch=32)
    X, y = spec.data()
    mine, weights = bench_gru.portnn_epoch(rt, spec, X, y)
    theirs = bench_gru.torch_epoch("cpu", spec, X, y, weights)
    np.testing.assert_allclose([mine() for _ in range(3)], [theirs() for _ in range(3)], rtol=1e-5)


def test_quick_suite_runs_every_section(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--threads", "1", "--repeats", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    sections = {r["section"] for r in result["rows"]}
    assert {"peak", "mlp", "seed", "cnn", "gru", "memory"} <= sections
    if bench_compiled_runs():
        assert {"compiled mlp", "compiled cnn", "compiled seed", "compiled sort-gpt"} <= sections
        jit = {r["section"]: r for r in result["rows"] if r["name"] == "portnn jax (jit)"}
        assert all(r["compile_s"] > 0 and r["median_s"] > 0 for r in jit.values())
        assert "compile " in printed
    mlp = {r["name"]: r for r in result["rows"] if r["section"] == "mlp"}
    assert {"numpy", "portnn"} <= set(mlp)
    assert mlp["portnn"]["median_s"] > 0
    assert "numpy" in mlp["portnn"]["ratios"]
    assert mlp["portnn"]["peak_frac"] > 0
    assert result["meta"]["blas"]
    assert "OPENBLAS_CORETYPE" in result["meta"]["env"]
    assert {b["bar"] for b in result["bars"]} >= {"seed net portnn µs/iteration", "MLP epoch peak memory / theory"}
    assert all(b["judged"] is False and b["pass"] is None for b in result["bars"])  # nothing judged at quick sizes
    assert "bars" in printed
    assert "not judged at --quick sizes" in printed
    assert "PASS" not in printed
    assert "FAIL" not in printed
    assert "None" not in printed  # BLAS/OpenMP lines print only what threadpoolctl knows
    assert "matmul-only" in printed
    assert " ms  " in printed
    assert " µs  " in printed


def bench_compiled_runs() -> bool:
    from portnn.bench import compiled as bench_compiled

    return bench_compiled.available() is None


def test_memory_theory_counts_data_params_grads_activations():
    spec = bench_mlp.MLPSpec(widths=(4, 3, 2), samples=10, batch=5)
    parts = bench_memory.theory_bytes(spec)
    assert parts["data"] == 10 * 4 * 4 + 10 * 8
    assert parts["params"] == parts["grads"] == (4 * 3 + 3 + 3 * 2 + 2) * 4
    assert parts["total"] == parts["data"] + 2 * parts["params"] + parts["activations"]


def test_bad_options_are_refused(tmp_path, capsys):
    for argv in (["--threads", "0"], ["--repeats", "0"]):
        with pytest.raises(SystemExit) as info:
            cli.main(["bench", *argv])
        assert info.value.code == 2
        assert f"argument {argv[0]}" in capsys.readouterr().err
    assert cli.main(["bench", "--json", str(tmp_path)]) == 2  # before anything is measured
    assert f"--json {tmp_path}: is a directory" in capsys.readouterr().err
    assert cli.main(["bench", "--only", "nonsense"]) == 2
    assert "unknown sections" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no device 'cuda'"):
        bench.run_suite(bench.Options(backend="numpy", device="cuda"))


def test_judged_failing_bars_and_the_exit_status():
    rows = [{"section": "seed", "name": "portnn", "threads": 1, "value": 26.0, "ratios": {"numpy": 1.2}}]
    full = {"bars": bench.bars(rows, "numpy")}
    assert [b["bar"] for b in bench.failed_bars(full)] == ["seed net portnn µs/iteration"]
    assert [b["pass"] for b in full["bars"]] == [False, True]
    quick = {"bars": bench.bars(rows, "numpy", judged=False)}
    assert bench.failed_bars(quick) == []
    assert "----  seed net portnn µs/iteration: 26.000" in bench.table({"meta": _meta(), "rows": [], **quick})


def _meta(pools=None):
    return {"backend": "numpy", "device": "cpu", "quick": True, "numpy": np.__version__, "processor": "cpu",
            "blas_after": pools or [], "env": {}}


@pytest.mark.parametrize(("pools", "expected"), [
    ([{"user_api": "openmp", "internal_api": "openmp", "prefix": "libgomp", "version": None, "architecture": None,
       "threading_layer": None, "num_threads": 2}],
     ["  BLAS: unknown (threadpoolctl found no BLAS)", "  OpenMP: 2 threads by default (libgomp)"]),
    ([{"error": "threadpoolctl is not installed"}], ["  BLAS: unknown (threadpoolctl is not installed)"]),
    ([{"user_api": "blas", "internal_api": "openblas", "prefix": "libopenblas", "version": "0.3.31",
       "architecture": "Haswell", "threading_layer": "pthreads", "num_threads": 4}],
     ["  BLAS: openblas, version 0.3.31, kernel Haswell, pthreads threading, 4 threads by default (libopenblas)"]),
])
def test_blas_lines_print_only_what_is_known(pools, expected):
    assert bench.blas_lines(pools) == expected
