"""Pieces shared by the per-hypothesis tables: one CSV row per measurement, and the sentence
describing a result's intervals."""
from __future__ import annotations

from mechanism.analyzers.context import AnalysisContext
from mechanism.stats.bootstrap import Interval


def measurement_row(measurement: str, value: Interval | float | int | str | None, detail: str = "",
                    **keys) -> dict:
    """A CSV row ``measurement, *keys, estimate, ci_low, ci_high, detail``: an ``Interval``
    gives its estimate and bounds (``detail`` defaults to its note), anything else is the
    estimate without bounds."""
    row = {"measurement": measurement, **keys}
    if isinstance(value, Interval):
        return {**row, "estimate": value.estimate, "ci_low": value.low, "ci_high": value.high,
                "detail": detail or value.note}
    return {**row, "estimate": value, "ci_low": None, "ci_high": None, "detail": detail}


def interval_text(n_boot: int, n_seeds: int = 1) -> str:
    """How the intervals of a result over images — or training seeds × images — were computed."""
    if not n_boot:
        return "no bootstrap intervals"
    over = "images" if n_seeds == 1 else \
        (f"S = {n_seeds} training seeds × images (one image draw serves every drawn seed; each "
         "value the mean over seeds)")
    return f"95% percentile bootstrap over {over}, B = {n_boot}"


def checkpoint_text(context: AnalysisContext) -> str:
    """The analysed checkpoint, or the checkpoints of several training seeds."""
    if context.n_seeds == 1:
        return f"checkpoint {context.checkpoint}"
    return (f"checkpoints of S = {context.n_seeds} training seeds "
            f"({', '.join(map(str, context.training_seeds))}; the first: {context.checkpoint})")
