"""`portnn parity` end to end: exit codes, the --json report, golden files (save, re-run against, tampered),
dumps compared across processes, and --trace naming the first step and layer out of tolerance."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from portnn import backends, cli
from portnn.parity.golden import load_golden

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def parity(capsys: pytest.CaptureFixture, *args: str | Path) -> tuple[int, str, str]:
    code = cli.main(["parity", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def rows_by_id(report: dict) -> dict[str, dict]:
    return {"{backend}-{device}-{dtype}".format(**r["target"]): r for r in report["rows"]}


def test_json_report_numpy_and_strict_on_both_devices(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("array_api_strict")
    code, out, _ = parity(capsys, "--example", "mlp", "--epochs", "5", "--backends", "numpy,array_api_strict",
                          "--json", tmp_path / "r.json")
    assert code == 0, out
    report = json.loads((tmp_path / "r.json").read_text())
    rows = rows_by_id(report)
    assert set(rows) == {f"{b}-{d}-{t}" for b, d in [("numpy", "cpu"), ("array_api_strict", "CPU_DEVICE"),
                                                        ("array_api_strict", "device1")]
                         for t in ("float64", "float32")}
    assert report["passed"] is True
    assert report["hyper"]["epochs"] == 5
    assert report["versions"]["packages"]["numpy"] == np.__version__
    for name, row in rows.items():
        assert row["passed"], name
        assert row["steps"] == 20, name  # 64 samples in batches of 16, 5 epochs
        assert row["tol"] == backends.get(row["target"]["backend"]).tol(row["target"]["dtype"], "mlp")
        assert set(row["layers"]) == {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"}
        if row["target"]["backend"] == "array_api_strict":
            assert row["max_rel"] == 0.0, name
            assert row["loss_diff"] == 0.0, name  # strict wraps NumPy: bit-identical
        if row["target"]["dtype"] == "float32":  # distance from float64 next to NumPy float32's own
            assert row["f64_dist"] > 0
            assert row["numpy_f64_dist"] > 0
            assert row["suspect"] is False
        else:
            assert row["f64_dist"] is None
    assert "device1" in out
    assert "PASS" in out
    assert "FAIL" not in out


def test_against_golden_passes_and_tampered_golden_fails_naming_the_layer(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = parity(capsys, "--against", GOLDEN / "mlp.npz", "--backends", "numpy")
    assert code == 0, out
    assert "golden file" in out

    tampered = tmp_path / "mlp-tampered.npz"
    with np.load(GOLDEN / "mlp.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    w = arrays["final/float64/2.weight"].copy()
    w[3, 5] += 1e-9  # far below what a person would notice, far above the float64 tolerance 1e-12
    arrays["final/float64/2.weight"] = w
    np.savez(tampered, **arrays)
    code, out, _ = parity(capsys, "--against", tampered, "--backends", "numpy", "--json", tmp_path / "r.json")
    assert code == 1
    assert re.search(r"FAIL numpy-cpu-float64: leaves tolerance .* in 2\.weight", out), out
    rows = rows_by_id(json.loads((tmp_path / "r.json").read_text()))
    bad = rows["numpy-cpu-float64"]
    assert not bad["passed"]
    assert bad["worst_layer"] == "2.weight"
    assert bad["first_bad"]["layer"] == "2.weight"
    assert bad["max_rel"] == pytest.approx(1e-9, rel=1e-3)
    assert rows["numpy-cpu-float32"]["passed"], "only the float64 result was tampered with"


def test_save_golden_then_against(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "g.npz"
    code, out, _ = parity(capsys, "--example", "seed", "--epochs", "30", "--backends", "numpy",
                          "--save-golden", path)
    assert code == 0, out
    assert path.exists(), out
    with np.load(path, allow_pickle=False) as data:  # no object arrays: loads without pickle
        assert {"meta", "data/X", "data/y", "init/0.weight", "final/float64/2.weight", "final/float32/0.weight",
                "loss/float64", "loss/float32"} <= set(data.files)
        assert data["final/float32/0.weight"].dtype == np.float32
        assert data["loss/float64"].shape == (30,)
    problem, ref, meta = load_golden(path)
    assert len(ref.losses["float32"]) == 30
    assert problem.epochs == 30
    assert meta["hyper"]["lr"] == 1.0
    assert meta["command"].startswith("portnn parity")
    code, out, _ = parity(capsys, "--against", path, "--backends", "numpy,array_api_strict:device1")
    assert code == 0, out


def test_dumps_compared_in_another_step(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path, dumps = tmp_path / "g.npz", tmp_path / "weights"
    assert parity(capsys, "--example", "mlp", "--epochs", "3", "--backends", "numpy", "--save-golden", path,
                  "--dump", dumps)[0] == 0
    assert parity(capsys, "--against", path, "--backends", "array_api_strict:device1", "--dump", dumps)[0] == 0
    files = sorted(p.name for p in dumps.iterdir())
    assert files == [f"mlp-{b}-{t}.npz" for b in ("array_api_strict-device1", "numpy-cpu")
                     for t in ("float32", "float64")]
    code, out, _ = parity(capsys, "--against", path, "--check-dumps", dumps, "--json", tmp_path / "r.json")
    assert code == 0, out
    assert len(json.loads((tmp_path / "r.json").read_text())["rows"]) == 4

    victim = dumps / "mlp-array_api_strict-device1-float32.npz"
    with np.load(victim, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["final/4.bias"] = arrays["final/4.bias"] + np.float32(1e-3)
    np.savez(victim, **arrays)
    code, out, _ = parity(capsys, "--against", path, "--check-dumps", dumps)
    assert code == 1, out
    assert "FAIL array_api_strict-device1-float32" in out, out
    assert "4.bias" in out, out


def test_trace_with_tightened_tolerance_names_step_and_layer(capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("torch")
    # strict equals NumPy bit for bit, so even tolerance 0 passes; torch rounds differently within a few steps
    code, out, _ = parity(capsys, "--example", "seed", "--epochs", "40", "--backends",
                          "array_api_strict:device1,torch", "--dtype", "float64", "--trace", "--tol", "0")
    assert code == 1
    assert "array_api_strict  device1" in out
    assert re.search(r"device1 +float64 .* PASS", out)
    assert re.search(r"FAIL torch-cpu-float64: leaves tolerance 0\.0e\+00 at step \d+ of 40 in "
                     r"(loss|\d\.weight) \(scaled diff [0-9.e+-]+", out), out


def test_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = parity(capsys, "--backends", "nosuch")
    assert code == 2
    assert "unknown backend 'nosuch'" in err
    code, _, err = parity(capsys, "--example", "nosuch")
    assert code == 2
    assert "unknown example 'nosuch'" in err
    code, _, err = parity(capsys, "--dtype", "float16")
    assert code == 2
    assert "--dtype: expected float32, float64 or both, got 'float16'" in err
    code, _, err = parity(capsys, "--against", GOLDEN / "seed.npz", "--example", "mlp")
    assert code == 2
    assert "--against" in err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    code, _, err = parity(capsys, "--against", bad)
    assert code == 2
    assert "not a readable portnn parity golden file" in err
    shutil.copy(GOLDEN / "seed.npz", tmp_path / "other.npz")
    code, _, err = parity(capsys, "--check-dumps", tmp_path)
    assert code == 2
    assert "--check-dumps needs --against" in err


def test_cupy_requested_without_cupy_or_gpu_is_a_clear_error(capsys: pytest.CaptureFixture) -> None:
    if backends.gpu_count():
        pytest.skip("this checks the message on a machine without a GPU")
    code, _, err = parity(capsys, "--backends", "numpy,cupy", "--example", "mlp")
    assert code == 2
    if backends.get("cupy").installed():
        assert "needs a CUDA GPU" in err
    else:
        assert "pip install 'cupy-cuda12x" in err
        assert "cupy-cuda11x" in err
        assert "cupy-cuda13x" in err


def test_dtype_both_is_the_two_dtypes() -> None:
    """--dtype takes what its help says: float32, float64, both, or the two comma-separated (ci/matrix passes both)."""
    from portnn.parity.run import parse_dtypes

    assert parse_dtypes("both") == parse_dtypes("float32,float64") == parse_dtypes(" float64 , float32") == \
        ("float64", "float32")
    assert parse_dtypes("float32") == ("float32",)

