"""H7's settings, its result records and the thresholds of its rules."""
from __future__ import annotations

from dataclasses import dataclass, field

from mechanism.analyzers.context import AnalysisContext, check_common_settings
from mechanism.errors import MechanismError
from mechanism.io.serialize import check_lengths
from mechanism.stats.bootstrap import Interval, PairedStat
from mechanism.stats.calibration import QQ_PERCENTILES, TAIL_PERCENTILES, QuantileRow, normal_quantiles
from mechanism.stats.evidence import Evidence

QQ_CALIBRATED = 0.995     # the grade "calibrated" needs QQ r ≥ this (SPEC §7.3, descriptive)
TAIL_CALIBRATED = 0.10    # … and a tail calibration error ≤ this
QQ_ROUGHLY = 0.98         # the grade "roughly" needs QQ r ≥ this
SPLITS = {"all": "test", "good": "test/good"}   # cfg.split → context split
CALIBRATION_STATS = ("z_mean", "z_std", "scale_error", "qq_correlation", "tail_error")   # Interval fields
PAIRED_STATS = ("qq_correlation", "tail_error", "z_std", "scale_error")                # PairedStat fields


@dataclass(frozen=True)
class H7Config:
    """Settings of the H7 analysis."""
    split: str = "good"                # "good" test images (calibration of the normal class) or "all"
    seed: int = 0                      # seeds the image subset, Shapiro subsample and bootstrap
    n_boot: int = 1000                 # bootstrap resamples for 95% intervals (0 = none)
    batch_size: int = 32               # images per flow batch
    max_images: int | None = None      # a seeded subset of n test images (all defect types)
    max_shapiro: int = 5000            # largest Shapiro-Wilk subsample per channel
    resample_bins: int = 4000          # equal-count bins of the per-image histograms

    def __post_init__(self):
        if self.split not in SPLITS:
            raise MechanismError(f"H7 split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.seed < 0:
            raise MechanismError(f"H7 seed must be ≥ 0, got {self.seed}")
        check_common_settings(self)
        if self.max_shapiro < 3:
            raise MechanismError(f"the Shapiro-Wilk subsample needs ≥ 3 values, got "
                                 f"{self.max_shapiro}")
        if self.resample_bins < 10:
            raise MechanismError(f"resample bins must be ≥ 10, got {self.resample_bins}")


@dataclass(frozen=True)
class LatentCalibration:
    """One model's z calibration on the analysed images (z is dimensionless)."""
    n_values: int                              # all z values: images · D · H · W
    n_channels: int                            # D
    z_mean: Interval
    z_std: Interval                            # population std
    scale_error: Interval                      # |z std − 1|
    qq_correlation: Interval
    tail_error: Interval                       # mean |empirical − theoretical| at TAIL_PERCENTILES
    empirical_percentiles: tuple[float, ...]   # (99,) exact percentiles 1..99 of all z
    quantiles: tuple[QuantileRow, ...]         # at TAIL_PERCENTILES (1, 2, 5, 95, 98, 99)
    mean_ks_p: float                           # mean over channels of the KS p-value
    mean_shapiro_p: float                      # mean over channels of the Shapiro-Wilk p-value
    ks_reject_share: float                     # share of channels with KS p < α
    shapiro_reject_share: float                # share of channels with Shapiro p < α
    shapiro_n: int                             # Shapiro-Wilk subsample per channel
    channel_ks_p: tuple[float, ...]            # (D,)
    channel_shapiro_p: tuple[float, ...]       # (D,)
    channel_mean: tuple[float, ...]            # (D,)
    channel_std: tuple[float, ...]             # (D,) population std
    percentile_errors: tuple[float, ...] = field(init=False)   # (99,) empirical − theoretical
                                               # at the percentiles 1..99 (signed; fig4), derived

    def __post_init__(self):
        check_lengths(self, "empirical_percentiles", length=len(QQ_PERCENTILES))
        check_lengths(self, "quantiles", length=len(TAIL_PERCENTILES))
        check_lengths(self, "channel_ks_p", "channel_shapiro_p", "channel_mean", "channel_std",
                      length=self.n_channels)
        theory = normal_quantiles(QQ_PERCENTILES)
        object.__setattr__(self, "percentile_errors", tuple(
            float(e - t) for e, t in zip(self.empirical_percentiles, theory)))

    def quantile(self, percentile: float) -> QuantileRow:
        return next(q for q in self.quantiles if q.percentile == percentile)


@dataclass(frozen=True)
class H7Paired:
    """Baseline (λ = 0) vs candidate on the same images and bootstrap resamples."""
    baseline_checkpoint: str        # the baseline checkpoint's label
    baseline_tail_weight: float     # λ of the baseline
    qq_correlation: PairedStat
    tail_error: PairedStat
    z_std: PairedStat
    scale_error: PairedStat         # |z std − 1|


@dataclass(frozen=True)
class SeedDifferences:
    """The claims' data: candidate − baseline over S seed pairs × the analysed images
    (two-stage bootstrap; estimates = mean over seeds of the exact differences)."""
    n_seeds: int                    # S: (candidate, baseline) pairs of one training seed each
    n_images: int
    tail_error: Interval            # Δ tail calibration error
    scale_error: Interval           # Δ |z std − 1|


@dataclass(frozen=True)
class H7Result:
    """H7 numbers, figure data (fig4 QQ plot + quantile errors, fig5 per-channel normality)
    and evidence. ``theoretical_percentiles[i]`` = Φ⁻¹(p/100) for ``percentile_levels[i]``."""
    hypothesis: str = field(init=False, default="H7")   # leading key of the stored JSON
    context: AnalysisContext
    config: dict                                 # the H7Config used
    percentile_levels: tuple[int, ...]           # (99,) 1..99
    theoretical_percentiles: tuple[float, ...]   # (99,)
    candidate: LatentCalibration
    baseline: LatentCalibration | None
    paired: H7Paired | None                      # the analysed pair (one seed), same resamples
    training: SeedDifferences | None             # every seed pair (the claims); None: no baseline
    method: str                                  # how tests and intervals were computed
    grade: str                                   # the candidate's calibration in words (descriptive)
    evidence: Evidence

    def __post_init__(self):
        if list(self.percentile_levels) != QQ_PERCENTILES.tolist():
            raise ValueError("percentile_levels: expected the percentiles 1..99")
        check_lengths(self, "percentile_levels", "theoretical_percentiles")
