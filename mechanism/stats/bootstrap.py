"""Seeded percentile bootstrap over images, with shared resamples for paired statistics."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mechanism.errors import MechanismError

Statistic = Callable[[np.ndarray], float]
"""Maps an index array of resampled images ``(n,)`` (with repeats) to one number."""


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval.

    ``low``/``high`` are ``None`` when no bootstrap was asked for (``n_boot = 0``) or when fewer
    than half of the resamples gave a finite value (``note`` says so).
    """
    estimate: float
    low: float | None
    high: float | None
    level: float          # e.g. 0.95
    n_boot: int           # resamples drawn
    n_finite: int         # resamples with a finite statistic
    note: str = ""

    def format(self, fmt: str = "{:.4g}") -> str:
        """``"1.23 [1.01, 1.50]"`` or just the estimate when there is no interval."""
        est = fmt.format(self.estimate)
        if self.low is None or self.high is None:
            return est
        return f"{est} [{fmt.format(self.low)}, {fmt.format(self.high)}]"


def bootstrap(statistics: dict[str, Statistic], n_units: int, n_boot: int, seed: int,
              level: float = 0.95) -> dict[str, Interval]:
    """Percentile intervals for several statistics over the *same* resamples of ``n_units`` images.

    Sharing resamples makes differences of paired statistics (baseline vs candidate on the same
    images) valid: pass the difference as one more statistic.

    Args:
        statistics: name → function of resampled image indices.
        n_units: number of images (resampling units).
        n_boot: resamples; 0 gives estimates without intervals.
        seed: seeds ``numpy.random.default_rng``.
        level: central coverage of the interval.
    """
    if n_units < 1:
        raise MechanismError("bootstrap needs at least one image")
    if n_boot < 0:
        raise MechanismError(f"bootstrap resamples must be ≥ 0, got {n_boot}")
    if not 0 < level < 1:
        raise MechanismError(f"bootstrap level must lie in (0, 1), got {level}")
    full = np.arange(n_units)
    estimates = {name: float(fn(full)) for name, fn in statistics.items()}
    if n_boot == 0:
        return {name: Interval(est, None, None, level, 0, 0, "no bootstrap requested")
                for name, est in estimates.items()}
    rng = np.random.default_rng(seed)
    draws = {name: np.empty(n_boot) for name in statistics}
    for b in range(n_boot):
        idx = rng.integers(0, n_units, size=n_units)
        for name, fn in statistics.items():
            draws[name][b] = fn(idx)
    return {name: percentile_interval(estimates[name], values, level) for name, values in draws.items()}


def percentile_interval(estimate: float, draws: np.ndarray, level: float = 0.95) -> Interval:
    """The percentile interval of a statistic's resampled values ``draws (B,)``; non-finite draws
    are dropped, and fewer than half finite gives no interval (the note says why)."""
    n_boot = len(draws)
    finite = draws[np.isfinite(draws)]
    if len(finite) < n_boot / 2:
        return Interval(estimate, None, None, level, n_boot, len(finite),
                        f"only {len(finite)} of {n_boot} resamples were finite")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    note = "" if len(finite) == n_boot else f"{n_boot - len(finite)} non-finite resamples dropped"
    return Interval(estimate, float(low), float(high), level, n_boot, len(finite), note)


@dataclass(frozen=True)
class PairedStat:
    """One statistic on the baseline and the candidate, over the same image resamples."""
    baseline: Interval
    candidate: Interval
    difference: Interval    # candidate − baseline
