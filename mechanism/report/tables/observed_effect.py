"""The observed effect's tables: baseline, tail-aware and their paired difference per metric."""
from __future__ import annotations

from mechanism.eval.metrics.detection import METRIC_LABELS
from mechanism.eval.observed_effect import OBSERVED_METRICS, ObservedEffect
from mechanism.io.text import markdown_table
from mechanism.stats.bootstrap import Interval

RESULT = ObservedEffect
ROLES = ("baseline", "candidate", "difference")


def _format_points(iv: Interval) -> str:
    """A difference of fractions in percentage points: ``"+9.94 [+6.1, +13.2] pts"``."""
    text = f"{100 * iv.estimate:+.2f}"
    if iv.low is not None and iv.high is not None:
        text += f" [{100 * iv.low:+.2f}, {100 * iv.high:+.2f}]"
    return text + " pts"


def markdown(result: ObservedEffect) -> str:
    """One row per metric (AUPRO without an interval), then the models and images compared."""
    rows = []
    for key, name in ((k, METRIC_LABELS[k]) for k in OBSERVED_METRICS):
        p = result.metrics[key]
        rows.append([f"**{name}**", p.baseline.format("{:.2%}"), p.candidate.format("{:.2%}"),
                     _format_points(p.difference)])
    rows.append(["AUPRO@0.3", f"{result.aupro[0]:.2%}", f"{result.aupro[1]:.2%}",
                 f"{100 * (result.aupro[1] - result.aupro[0]):+.2f} pts (no interval)"])
    table = markdown_table(["metric", "baseline", "tail-aware",
                            "difference (tail-aware − baseline)"], rows)
    return (f"{table}\n\nBaseline: {result.baseline}. Tail-aware: {result.candidate}. "
            f"{result.category}: {result.n_good} good + {result.n_defective} defective test "
            f"images; {result.interval_method}; seed {result.seed}.")


def csv_rows(result: ObservedEffect) -> list[dict]:
    """One row per metric: each role's estimate and bounds; then AUPRO (estimates only)."""
    out = []
    for key, p in result.metrics.items():
        row = {"metric": key}
        for role in ROLES:
            iv = getattr(p, role)
            row.update({role: iv.estimate, f"{role}_low": iv.low, f"{role}_high": iv.high})
        out.append(row)
    out.append({"metric": "aupro", "baseline": result.aupro[0], "candidate": result.aupro[1],
                "difference": result.aupro[1] - result.aupro[0]})
    return out
