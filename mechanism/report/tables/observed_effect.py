"""The observed effect's tables: baseline, tail-aware and their paired difference per metric."""
from __future__ import annotations

from mechanism.eval.metrics.detection import METRIC_LABELS
from mechanism.eval.observed_effect import OBSERVED_METRICS, ObservedEffect
from mechanism.io.text import markdown_table
from mechanism.stats.bootstrap import Interval

RESULT = ObservedEffect
ROLES = ("baseline", "candidate", "difference")


def format_points(iv: Interval) -> str:
    """A difference of fractions in percentage points: ``"+9.94 [+6.1, +13.2] pts"``."""
    text = f"{100 * iv.estimate:+.2f}"
    if iv.low is not None and iv.high is not None:
        text += f" [{100 * iv.low:+.2f}, {100 * iv.high:+.2f}]"
    return text + " pts"


def markdown(result: ObservedEffect, roles: tuple[str, str] = ("baseline", "tail-aware")) -> str:
    """One row per metric, then the models, seeds and images compared; ``roles`` names the two
    columns (the random-k control: ``("random-k", "top-k")``)."""
    rows = []
    for key, name in ((k, METRIC_LABELS[k]) for k in OBSERVED_METRICS):
        p = result.metrics[key]
        rows.append([f"**{name}**", p.baseline.format("{:.2%}"), p.candidate.format("{:.2%}"),
                     format_points(p.difference)])
    table = markdown_table([f"metric (mean over S = {result.n_seeds} seeds)", *roles,
                            f"difference ({roles[1]} − {roles[0]})"], rows)
    return (f"{table}\n\n{roles[0].capitalize()}: {result.baseline}. "
            f"{roles[1].capitalize()}: {result.candidate}. {result.category}: {result.n_good} good + "
            f"{result.n_defective} defective test images, S = {result.n_seeds} training seeds; "
            f"{result.scoring}; {result.interval_method}; resample seed {result.seed} (image draws "
            f"streamed by seed and category).")


def csv_rows(result: ObservedEffect) -> list[dict]:
    """One row per metric: each role's estimate and bounds, and S."""
    out = []
    for key, p in result.metrics.items():
        row = {"metric": key, "n_seeds": result.n_seeds}
        for role in ROLES:
            iv = getattr(p, role)
            row.update({role: iv.estimate, f"{role}_low": iv.low, f"{role}_high": iv.high})
        out.append(row)
    return out
