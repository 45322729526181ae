"""H4's settings, constants, measured-metrics input and frozen result records."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from mechanism.analyzers.context import AnalysisContext, check_common_settings
from mechanism.data.augment import AugmentConfig
from mechanism.errors import MechanismError
from mechanism.eval.observed_effect import ObservedEffect
from mechanism.stats.bootstrap import Interval
from mechanism.stats.evidence import Evidence
from mechanism.stats.summary import MetricSummary

DEFAULT_RATIOS = (0.01, 0.02, 0.03, 0.05, 0.10, 0.20, 0.50, 1.0)
STUDY_RATIO = 0.02             # r fixed in advance for H4's claims (the study's optimum, SPEC §7.3)
CONTRAST_RATIOS = (0.10, 1.0)  # H4.performance compares r = 2% with these (pre-registered)
MEASURED_METRICS = ("pixel_ap", "image_auroc")   # what a sweep adds to each ratio row
SWEEP_PARAM = "tail_top_k_ratio"  # the swept parameter whose runs give the measured columns
BASIS_PIXEL_AP = "measured Pixel AP"
BASIS_EFFECTIVE = "effective concentration"
DEFAULT_IMAGES = 64            # H4 runs the backbone on M augmented views per image, which no cache can
                               # serve; 64 of the demo's 200 images cost 1.3 backbone passes instead of
                               # 4 and moved purity by ≤ 0.03, inside its 95% interval (brick, λ 0.7)


@dataclass(frozen=True)
class H4Config:
    """Settings of the H4 analysis."""
    ratios: tuple[float, ...] = DEFAULT_RATIOS  # top-k ratios r analysed (a sweep's ratios are added)
    reference_ratio: float = 0.02               # truly hard share per image: k_ref = max(1, round(N·this))
    n_views: int = 4                            # M: views in the reference (clean + M−1 augmented)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # strength of the augmented views
    seed: int = 0                               # seeds the augmented views and the bootstrap (≥ 0)
    n_boot: int = 1000                          # bootstrap resamples over images (0 = no intervals)
    batch_size: int = 32                        # images per backbone/flow batch
    max_images: int | None = DEFAULT_IMAGES     # use the first n training images (sorted order; None: all)

    def __post_init__(self):
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))
        if isinstance(self.augment, dict):  # as stored in a result's JSON
            object.__setattr__(self, "augment", AugmentConfig(**self.augment))
        if not self.ratios or any(not 0.0 < r <= 1.0 for r in self.ratios):
            raise MechanismError(f"H4 ratios must be a non-empty list in (0, 1], got {list(self.ratios)}")
        if not 0.0 < self.reference_ratio <= 1.0:
            raise MechanismError(f"H4 reference ratio must lie in (0, 1], got {self.reference_ratio}")
        if self.n_views < 1:
            raise MechanismError(f"H4 needs at least one reference view, got {self.n_views}")
        if self.seed < 0:
            raise MechanismError(f"H4 seed must be ≥ 0 (it seeds the views), got {self.seed}")
        check_common_settings(self)


@dataclass(frozen=True)
class MeasuredRatios:
    """Detection metrics measured on checkpoints trained at each top-k ratio (a sweep's runs).

    ``metrics``: ratio r → metric name (``"pixel_ap"``, ``"image_auroc"``, …) → its summary over
    training seeds, as ``mechanism.sweep.results.summarize_sweep(runs, SWEEP_PARAM, category)``
    gives it. ``source`` names where they come from (the sweep folder); the result records it.
    """
    source: str
    metrics: dict[float, dict[str, MetricSummary]]

    def __post_init__(self):
        bad = [r for r in self.metrics if not 0.0 < r <= 1.0]
        if bad:
            raise MechanismError(f"sweep {self.source} lists top-k ratio {bad[0]:g} outside (0, 1]")

    def at(self, ratio: float) -> dict[str, MetricSummary]:
        """The metrics measured at ``ratio`` (compared with ``math.isclose``; ``{}``: none)."""
        return next((m for r, m in self.metrics.items() if math.isclose(r, ratio)), {})


@dataclass(frozen=True)
class RatioRow:
    """The H4 numbers of one top-k ratio."""
    ratio: float                            # r
    k: int                                  # max(1, round(N·r))
    amplification: float                    # N / k (theoretical)
    purity: Interval                        # mean per-image purity, 95% bootstrap interval
    oracle_purity: float                    # min(1, k_ref / k)
    effective_concentration: Interval       # purity × amplification, same resamples
    pixel_ap: MetricSummary | None          # measured by the sweep at r (None: not measured)
    image_auroc: MetricSummary | None
    purity_forced: bool                     # oracle = chance (k = N): purity fixed by definition

    def __post_init__(self):
        if not (0 < self.ratio <= 1 and self.k >= 1):
            raise ValueError(f"RatioRow: expected 0 < r ≤ 1 and k ≥ 1, got r = {self.ratio}, k = {self.k}")


@dataclass(frozen=True)
class PerformanceContrast:
    """H4.performance's measurement: checkpoints trained at r = 2% against those at ``ratio``."""
    ratio: float                            # the diluted ratio (10% or 100%)
    effect: ObservedEffect | None           # baseline = r = ratio, candidate = r = 2%, paired seeds
    note: str                               # why ``effect`` is None ("" otherwise)


@dataclass(frozen=True)
class H4Result:
    """Purity, amplification and effective concentration per top-k ratio, the pre-registered
    performance contrasts, and the evidence."""
    hypothesis: str = field(init=False, default="H4")  # leads the stored JSON
    context: AnalysisContext
    config: dict                    # the H4Config used, as plain types
    k_ref: int                      # truly hard patches per image
    chance_purity: float            # k_ref / N
    n_views: int | None             # M views in the reference (None: a reference checkpoint)
    selection_source: str           # what ranked the selected patches
    reference_source: str           # what defined the truly hard patches
    sweep: str | None               # source of the measured columns (``MeasuredRatios.source``)
    rows: tuple[RatioRow, ...]      # ascending ratios
    best_ratio: float               # a description only, never evidence (picked on the test set)
    best_basis: str                 # "measured Pixel AP" or "effective concentration"
    performance: tuple[PerformanceContrast, ...]   # one per CONTRAST_RATIOS (empty: no sweep)
    evidence: Evidence

    def __post_init__(self):
        ratios = [row.ratio for row in self.rows]
        if not ratios or ratios != sorted(set(ratios)):
            raise ValueError(f"H4Result.rows: expected distinct ascending ratios, got {ratios}")
        if self.k_ref < 1:
            raise ValueError(f"H4Result.k_ref: expected ≥ 1, got {self.k_ref}")
