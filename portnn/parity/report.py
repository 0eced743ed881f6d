"""The parity report as text: one table row per backend/device/dtype, then a line for each failure and each
suspect float32 run (its distance from float64 many times NumPy float32's own)."""

from __future__ import annotations

from ..io.duration import format_duration
from .check import Report, Row
from .run import SUSPECT_RATIO

HEADER = ("backend", "device", "dtype", "steps", "final loss", "max |dW|", "max rel", "worst layer", "loss rel",
          "f32 vs f64 (numpy's)", "time", "tol", "result")


def _e(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.1e}"


def cells(row: Row) -> tuple[str, ...]:
    """The table cells of one row."""
    t = row.target
    if row.error is not None:
        return (t.label, t.device, t.dtype, "-", "-", "-", "-", "-", "-", "-", "-", _e(row.tol), "FAIL (error)")
    f32 = "-"
    if row.f64_dist is not None:
        f32 = f"{_e(row.f64_dist)} ({_e(row.numpy_f64_dist)}, {row.ratio:.1f}x)" + (" SUSPECT" if row.suspect else "")
    return (t.label, t.device, t.dtype, str(row.steps), f"{row.final_loss:.6g}", _e(row.max_abs), _e(row.max_rel),
            row.worst_layer if row.max_rel > 0 else "-", _e(row.loss_diff), f32, format_duration(row.seconds),
            _e(row.tol), "PASS" if row.passed else "FAIL")


def table(rows: list[Row]) -> str:
    """Rows as aligned columns."""
    lines = [HEADER, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def notes(report: Report) -> list[str]:
    """One line per failing row (the first step and layer out of tolerance, or the error) and per suspect row."""
    out = []
    for r in report.rows:
        if r.error is not None:
            out.append(f"FAIL {r.target}: {r.error}")
        elif not r.passed:
            bad = r.first_bad or {"step": r.steps, "layer": r.worst_layer, "diff": r.max_rel, "detail": ""}
            out.append(f"FAIL {r.target}: leaves tolerance {r.tol:.1e} at step {bad['step']} of {r.steps} in "
                       f"{bad['layer']} (scaled diff {bad['diff']:.3e}; {bad.get('detail', '')}); final worst layer "
                       f"{r.worst_layer} {r.max_rel:.3e}")
        if r.suspect:
            out.append(f"SUSPECT {r.target}: float32 result is {r.ratio:.1f}x farther from the float64 reference than "
                       f"NumPy float32 ({r.f64_dist:.2e} vs {r.numpy_f64_dist:.2e}; flagged above {SUSPECT_RATIO:g}x)")
    return out


def render(report: Report) -> str:
    """The whole report as printed by ``portnn parity``."""
    h = report.hyper
    head = [f"parity: recipe {h['recipe']} (seed {h['seed']}, lr {h['lr']}, {h['epochs']} epochs, batch "
            f"{h['batch_size'] or 'full'}, {h['loss']}, {h['optimizer']}"
            + (f", {h['controls']}" if h.get("controls") else "") + ")",
            f"reference: {report.reference}; float32 rows are checked against NumPy float32, float64 rows against "
            "NumPy float64; measure max |dW| / max(1, |W|)"]
    if report.tol_override is not None:
        head.append(f"tolerance override: {report.tol_override:g} for every row (backends/*.toml ignored)")
    if report.skipped:
        head.append(f"skipped: {', '.join(report.skipped)}")
    passed = sum(r.passed for r in report.rows)
    tail = [f"{passed}/{len(report.rows)} PASS" + ("" if report.passed else "; parity FAILED")]
    return "\n".join([*head, "", table(report.rows), "", *notes(report), *tail])
