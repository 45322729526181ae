"""Calibration of latent values against N(0, 1): QQ correlation, tail error, quantiles,
per-channel normality tests, and quantiles of bootstrap-resampled pools via per-unit histograms.

Percentiles are numpy's default (``method="linear"``) percentiles of all values, in the units
of the values; theoretical percentiles are ``scipy.stats.norm.ppf(p / 100)``.

    QQ correlation   = Pearson r between the theoretical and empirical percentiles 1, 2, …, 99
    tail error       = mean |empirical − theoretical| at the percentiles 1, 2, 5, 95, 98, 99

For z ~ N(0, σ²) the empirical percentiles are σ·Φ⁻¹(p), so the QQ correlation is 1 for any σ
and the tail error is |1 − σ|·mean|Φ⁻¹(p)|: the QQ correlation measures shape, the tail error
also scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

QQ_PERCENTILES = np.arange(1, 100)            # percentiles (%) of the QQ correlation
TAIL_PERCENTILES = (1, 2, 5, 95, 98, 99)      # percentiles (%) of the tail calibration error
TABLE_PERCENTILES = (1, 5, 95, 99)            # percentiles (%) of the study's quantile table
_TAIL_INDEX = np.searchsorted(QQ_PERCENTILES, TAIL_PERCENTILES)  # positions in QQ_PERCENTILES
KS_EXACT_MAX_N = 10_000    # KS p-values exact up to this many values a channel, asymptotic above
KS_METHOD = (f"scipy.stats.kstest against N(0, 1), two-sided, per channel; exact p-value up to "
             f"{KS_EXACT_MAX_N:,} values a channel, asymptotic above")
SHAPIRO_METHOD = ("scipy.stats.shapiro on one seeded subsample of patch positions shared by all "
                  "channels")


def normal_quantiles(percentiles) -> np.ndarray:
    """Standard normal quantiles ``Φ⁻¹(p / 100)`` of percentiles ``p`` in (0, 100), float64."""
    return stats.norm.ppf(np.asarray(percentiles, dtype=np.float64) / 100.0)


_QQ_THEORY = stats.norm.ppf(QQ_PERCENTILES / 100.0)            # (99,) Φ⁻¹ at 1..99 %
_QQ_THEORY_CENTRED = _QQ_THEORY - _QQ_THEORY.mean()
_TAIL_THEORY = _QQ_THEORY[_TAIL_INDEX]                             # (6,) Φ⁻¹ at TAIL_PERCENTILES


def _finite_values(values: np.ndarray) -> np.ndarray:
    """Every value of ``values`` (any shape) as one finite 1-D array; ValueError if empty or
    non-finite."""
    values = np.asarray(values).ravel()
    if values.size == 0:
        raise ValueError("calibration needs at least one value")
    if not np.all(np.isfinite(values)):
        raise ValueError("calibration values hold non-finite numbers")
    return values


def qq_percentiles(values: np.ndarray) -> np.ndarray:
    """Empirical percentiles 1..99 ``(99,)`` float64 of all ``values`` (any shape)."""
    return np.percentile(_finite_values(values), QQ_PERCENTILES).astype(np.float64)


def qq_correlation_of_percentiles(empirical: np.ndarray) -> float:
    """Pearson r between ``normal_quantiles(1..99)`` and empirical percentiles 1..99 ``(99,)``.

    NaN when the empirical percentiles are all equal (the correlation is undefined).
    """
    empirical = np.asarray(empirical, dtype=np.float64)
    if empirical.shape != QQ_PERCENTILES.shape:
        raise ValueError(f"expected the 99 percentiles 1..99, got shape {empirical.shape}")
    if np.ptp(empirical) == 0:
        return float("nan")
    centred = empirical - empirical.mean()
    return float(_QQ_THEORY_CENTRED @ centred
                 / np.sqrt((_QQ_THEORY_CENTRED @ _QQ_THEORY_CENTRED) * (centred @ centred)))


def tail_error_of_percentiles(empirical: np.ndarray) -> float:
    """Mean |empirical − theoretical| at the percentiles 1, 2, 5, 95, 98, 99, from the
    percentiles 1..99 ``(99,)``; units of the values."""
    empirical = np.asarray(empirical, dtype=np.float64)
    if empirical.shape != QQ_PERCENTILES.shape:
        raise ValueError(f"expected the 99 percentiles 1..99, got shape {empirical.shape}")
    return float(np.abs(empirical[_TAIL_INDEX] - _TAIL_THEORY).mean())


def qq_correlation(values: np.ndarray) -> float:
    """QQ correlation of all ``values`` (any shape) against N(0, 1); NaN if the percentiles
    1..99 are all equal."""
    return qq_correlation_of_percentiles(qq_percentiles(values))


def tail_calibration_error(values: np.ndarray) -> float:
    """Tail calibration error of all ``values`` (any shape) against N(0, 1)."""
    return tail_error_of_percentiles(qq_percentiles(values))


@dataclass(frozen=True)
class QuantileRow:
    """One row of the quantile table; values in the units of the data."""
    percentile: float     # p in (0, 100)
    empirical: float      # numpy's linear percentile p of the values
    theoretical: float    # Φ⁻¹(p / 100)
    error: float          # |empirical − theoretical|


def quantile_table(values: np.ndarray, percentiles=TABLE_PERCENTILES) -> list[QuantileRow]:
    """Empirical vs standard-normal quantiles of all ``values`` at ``percentiles`` (%)."""
    empirical = np.percentile(_finite_values(values), percentiles)
    theoretical = normal_quantiles(percentiles)
    return [QuantileRow(float(p), float(e), float(t), float(abs(e - t)))
            for p, e, t in zip(percentiles, empirical, theoretical)]


@dataclass(frozen=True)
class ChannelNormality:
    """Per-channel tests of N(0, 1) (KS) and of normality (Shapiro-Wilk), each ``(D,)`` float64."""
    ks_p: np.ndarray          # KS p-value against N(0, 1)
    shapiro_p: np.ndarray     # Shapiro-Wilk p-value on the subsample
    mean: np.ndarray          # channel mean over all values
    std: np.ndarray           # channel population std over all values
    shapiro_n: int            # values per channel in the Shapiro-Wilk subsample

    def reject_share(self, p: np.ndarray, alpha: float) -> float:
        """Share of channels whose p-value ``p`` (one of the arrays above) is below ``alpha``."""
        return float(np.mean(p < alpha))


def channel_normality(z: np.ndarray, seed: int, max_shapiro: int = 5000) -> ChannelNormality:
    """Normality per channel of ``z (n, D)`` (n values of each of D channels).

    KS uses every value of a channel (``KS_METHOD``; at 10,000 values the asymptotic p-value
    is ~1% (relative) above the exact one, which takes ~14 s for 112 channels of 78,400
    values). Shapiro-Wilk uses the rows ``default_rng(seed).choice(n, min(n, max_shapiro),
    replace=False)`` (sorted), the same rows for every channel, so the same seed gives the
    same p-values.
    """
    z = np.asarray(z)
    if z.ndim != 2:
        raise ValueError(f"z must have shape (n, D), got {z.shape}")
    if max_shapiro < 3:
        raise ValueError(f"Shapiro-Wilk needs a subsample of ≥ 3 values, got max {max_shapiro}")
    n = z.shape[0]
    if n < 3:
        raise ValueError(f"Shapiro-Wilk needs ≥ 3 values per channel, got {n}")
    if not np.all(np.isfinite(z)):
        raise ValueError("z holds non-finite numbers")
    z = z.astype(np.float64, copy=False)
    ks_method = "exact" if n <= KS_EXACT_MAX_N else "asymp"    # exact costs O(n²)-ish time
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n, max_shapiro), replace=False))
    ks_p = stats.kstest(z, "norm", axis=0, method=ks_method).pvalue
    shapiro_p = stats.shapiro(z[rows], axis=0).pvalue
    return ChannelNormality(
        ks_p=np.atleast_1d(ks_p).astype(np.float64),
        shapiro_p=np.atleast_1d(shapiro_p).astype(np.float64),
        mean=z.mean(axis=0), std=z.std(axis=0), shapiro_n=len(rows))


@dataclass(frozen=True)
class PooledHistograms:
    """Per-unit histograms on shared bins, for percentiles of a resampled pool of units.

    Resampling units (images) with weights ``w (n_units,)`` (how often each is drawn) pools
    ``w @ counts``; the pool's CDF is taken linear inside each bin and inverted. The bins hold
    equal shares of all values (edges at their quantiles), so they are narrow where values are
    dense; a percentile's error is below the width of the bin it falls in.
    """
    edges: np.ndarray     # (M + 1,) strictly increasing float64 bin edges
    counts: np.ndarray    # (n_units, M) float64 values per unit and bin

    @classmethod
    def from_values(cls, values: np.ndarray, n_bins: int) -> "PooledHistograms":
        """Histograms of ``values (n_units, m)`` (row = one unit's values) on ``n_bins`` bins
        (fewer when values repeat: edges are the distinct quantiles)."""
        values = np.asarray(values)
        if values.ndim != 2 or values.size == 0:
            raise ValueError(f"values must have shape (n_units, m) with m ≥ 1, got {values.shape}")
        if n_bins < 1:
            raise ValueError(f"histograms need ≥ 1 bin, got {n_bins}")
        flat = np.sort(_finite_values(values))
        edges = np.unique(flat[np.round(np.linspace(0, flat.size - 1, n_bins + 1)).astype(np.int64)])
        if edges.size == 1:                     # all values equal: one bin of zero width
            edges = np.array([edges[0], edges[0]])
        n_units, m = values.shape
        n_hist = edges.size - 1
        # edges are values, so searching in the values' own dtype is exact (and skips a cast)
        bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, n_hist - 1)
        bins += np.arange(n_units)[:, None] * n_hist
        counts = np.bincount(bins.ravel(), minlength=n_units * n_hist).reshape(n_units, n_hist)
        return cls(edges.astype(np.float64), counts.astype(np.float64))

    def percentiles(self, weights: np.ndarray, percentiles) -> np.ndarray:
        """Percentiles (%) of the pool where unit ``i`` counts ``weights[i]`` times, float64."""
        cum = np.concatenate([[0.0], np.cumsum(np.asarray(weights, dtype=np.float64) @ self.counts)])
        target = np.asarray(percentiles, dtype=np.float64) / 100.0 * cum[-1]
        upper = np.clip(np.searchsorted(cum, target, side="left"), 1, len(cum) - 1)
        below, above = cum[upper - 1], cum[upper]
        frac = np.divide(target - below, above - below, out=np.zeros_like(target),
                         where=above > below)
        return self.edges[upper - 1] + frac * (self.edges[upper] - self.edges[upper - 1])


@dataclass(frozen=True)
class PooledMoments:
    """Per-unit centred sums for the mean and population std of a resampled pool of units."""
    center: float         # value the sums are taken around (the mean of all values)
    sums: np.ndarray      # (n_units,) Σ (x − center)
    squares: np.ndarray   # (n_units,) Σ (x − center)²
    sizes: np.ndarray     # (n_units,) values per unit

    @classmethod
    def from_values(cls, values: np.ndarray) -> "PooledMoments":
        """From ``values (n_units, m)``, one row per unit."""
        values = np.asarray(values)
        if values.ndim != 2 or values.size == 0:
            raise ValueError(f"values must have shape (n_units, m) with m ≥ 1, got {values.shape}")
        center = float(values.mean(dtype=np.float64))
        dev = values.astype(np.float64) - center
        return cls(center, dev.sum(axis=1), np.square(dev).sum(axis=1),
                   np.full(values.shape[0], float(values.shape[1])))

    def mean(self, weights: np.ndarray) -> float:
        """Mean of the pool where unit ``i`` counts ``weights[i]`` times."""
        return self.center + float(weights @ self.sums / (weights @ self.sizes))

    def std(self, weights: np.ndarray) -> float:
        """Population std (ddof 0) of the pool where unit ``i`` counts ``weights[i]`` times."""
        size = weights @ self.sizes
        shift = weights @ self.sums / size
        return float(np.sqrt(max(weights @ self.squares / size - shift * shift, 0.0)))
