"""Pieces shared by the per-hypothesis tables: one CSV row per measurement, and the sentence
describing a result's intervals."""
from __future__ import annotations

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


def interval_text(n_boot: int) -> str:
    """How the intervals of a result over images were computed."""
    return (f"95% percentile bootstrap over images, B = {n_boot}" if n_boot
            else "no bootstrap intervals")
