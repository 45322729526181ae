"""Seeded percentile bootstrap over images, or over training seeds × images (two-stage), with
shared resamples for paired statistics."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from mechanism.errors import MechanismError

Statistic = Callable[[np.ndarray], float]
"""Maps an index array of resampled images ``(n,)`` (with repeats) to one number."""

SeedStatistic = Callable[[Sequence[tuple[int, np.ndarray]]], float]
"""Maps a two-stage resample — per drawn seed, ``(seed index, resampled image indices)`` — to
one number."""


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
    images) valid: pass the difference as one more statistic. This is ``two_stage_bootstrap``
    with one seed (the same draws).

    Args:
        statistics: name → function of resampled image indices.
        n_units: number of images (resampling units).
        n_boot: resamples; 0 gives estimates without intervals.
        seed: seeds ``numpy.random.default_rng``.
        level: central coverage of the interval.
    """
    return two_stage_bootstrap({name: _first_seed(fn) for name, fn in statistics.items()},
                               [n_units], n_boot, seed, level)


def _first_seed(fn: Statistic) -> SeedStatistic:
    return lambda draw: fn(draw[0][1])


def seed_mean(per_seed: Sequence[Statistic]) -> SeedStatistic:
    """The mean over the drawn seeds of ``per_seed[s]`` on seed s's resampled images."""
    return lambda draw: float(np.mean([per_seed[s](idx) for s, idx in draw]))


def seeds_bootstrap(per_seed: Sequence[dict[str, Statistic]], n_images: int, n_boot: int,
                    seed: int, level: float = 0.95,
                    ratios: dict[str, tuple[str, str]] | None = None) -> dict[str, Interval]:
    """Intervals over training seeds × images of statistics measured on every seed's model
    over the *same* ``n_images`` images (SPEC §7.2, crossed draws: one image draw per resample
    serves every drawn seed).

    ``per_seed[s]``: name → statistic of seed s's model on resampled image indices. A
    statistic's value on a resample is the mean over the drawn seeds; its estimate the mean over
    all seeds on all images. A name missing from a seed, or undefined (non-finite) on a seed's
    full data, is left out: a mean over the other seeds would silently be another quantity.
    ``ratios``: name → (numerator, denominator) names of ``per_seed``, the ratio of their
    means over the drawn seeds — for a ratio whose denominator may be small for one seed (a
    mean of per-seed ratios would let that seed dominate); undefined where the mean
    denominator is 0. With one seed this is ``bootstrap`` (the same draws).
    """
    if not per_seed:
        raise MechanismError("bootstrap needs at least one seed")
    full = np.arange(n_images)
    names = [name for name in per_seed[0] if all(
        name in stats and np.isfinite(stats[name](full)) for stats in per_seed)]
    statistics = {name: seed_mean([stats[name] for stats in per_seed]) for name in names}
    for name, (numerator, denominator) in (ratios or {}).items():
        if numerator in statistics and denominator in statistics:
            statistics[name] = _ratio_of_means(statistics[numerator], statistics[denominator])
    return two_stage_bootstrap(statistics, [n_images] * len(per_seed), n_boot, seed, level,
                               shared_images=True)


def _ratio_of_means(numerator: SeedStatistic, denominator: SeedStatistic) -> SeedStatistic:
    def ratio(draw):
        d = denominator(draw)
        return numerator(draw) / d if d != 0 else float("nan")
    return ratio


def resample_seed(seed: int, stream: str) -> int:
    """A seed for the resamples of one named stream (e.g. a category) under the analysis
    ``seed``: different names draw independently, the same name always alike."""
    return int(np.random.SeedSequence([seed, zlib.crc32(stream.encode("utf-8"))]).generate_state(1)[0])


def _check(n_images: Sequence[int], n_boot: int, level: float) -> None:
    if len(n_images) < 1:
        raise MechanismError("bootstrap needs at least one seed")
    if min(n_images) < 1:
        raise MechanismError("bootstrap needs at least one image")
    if n_boot < 0:
        raise MechanismError(f"bootstrap resamples must be ≥ 0, got {n_boot}")
    if not 0 < level < 1:
        raise MechanismError(f"bootstrap level must lie in (0, 1), got {level}")


def two_stage_resamples(n_images: Sequence[int], n_boot: int, seed: int,
                        shared_images: bool = False, image_seed: int | None = None
                        ) -> list[list[tuple[int, np.ndarray]]]:
    """``n_boot`` two-stage resamples (SPEC §7.2): each draws S seeds with replacement, then
    images with replacement, as ``[(seed index, image indices), …]``.

    ``shared_images=False`` (nested): each drawn seed gets its own draw of its ``n_images[s]``
    images — right when every seed has images of its own. ``shared_images=True`` (crossed): one
    image draw per resample serves every drawn seed — right when all seeds are evaluated on the
    *same* images (one test set), whose sampling variance independent draws would divide by
    about S. With one seed there is nothing to draw at the first stage, and both give
    ``bootstrap``'s draws.

    ``image_seed``: draw the images from a stream of their own, the seeds staying on ``seed``'s:
    categories trained with the same seeds (the same initialisations and data orders) then
    share their seed draws, while their images — different images — draw independently.
    """
    _check(n_images, n_boot, 0.95)
    if shared_images and len(set(n_images)) != 1:
        raise MechanismError(f"shared images need the same number per seed, got {list(n_images)}")
    rng = np.random.default_rng(seed)
    images = rng if image_seed is None else np.random.default_rng(image_seed)
    n_seeds = len(n_images)
    out = []
    for _ in range(n_boot):
        seeds = rng.integers(0, n_seeds, size=n_seeds) if n_seeds > 1 else [0]
        if shared_images:
            idx = images.integers(0, n_images[0], size=n_images[0])
            out.append([(int(s), idx) for s in seeds])
        else:
            out.append([(int(s), images.integers(0, n_images[s], size=n_images[s])) for s in seeds])
    return out


def two_stage_draws(statistics: dict[str, SeedStatistic], n_images: Sequence[int], n_boot: int,
                    seed: int, shared_images: bool = False) -> dict[str, np.ndarray]:
    """Each statistic on the ``two_stage_resamples``, ``(n_boot,)`` per name; every statistic
    sees the same resample, so baseline and candidate of one seed index are paired."""
    resamples = two_stage_resamples(n_images, n_boot, seed, shared_images)
    return {name: np.array([fn(r) for r in resamples], dtype=np.float64)
            for name, fn in statistics.items()}


def two_stage_bootstrap(statistics: dict[str, SeedStatistic], n_images: Sequence[int],
                        n_boot: int, seed: int, level: float = 0.95,
                        shared_images: bool = False) -> dict[str, Interval]:
    """Percentile intervals over seeds × images (``two_stage_draws``); the estimate of each
    statistic is its value on every seed with all its images.

    Args:
        statistics: name → function of a two-stage resample.
        n_images: images of each seed ``(S,)``.
        n_boot: resamples; 0 gives estimates without intervals.
        seed: seeds ``numpy.random.default_rng``.
        shared_images: every seed was measured on the same images (``two_stage_resamples``).
    """
    _check(n_images, n_boot, level)
    full = [(s, np.arange(n)) for s, n in enumerate(n_images)]
    estimates = {name: float(fn(full)) for name, fn in statistics.items()}
    if n_boot == 0:
        return {name: Interval(est, None, None, level, 0, 0, "no bootstrap requested")
                for name, est in estimates.items()}
    draws = two_stage_draws(statistics, n_images, n_boot, seed, shared_images)
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
