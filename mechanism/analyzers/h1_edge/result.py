"""H1's settings, its result records and the thresholds of its rule."""
from __future__ import annotations

from dataclasses import dataclass

from mechanism.analyzers.context import AnalysisContext, check_common_settings
from mechanism.analyzers.h1_edge.flip_control import FlipControl
from mechanism.errors import MechanismError
from mechanism.io.serialize import check_grid, check_lengths
from mechanism.stats.bootstrap import Interval, PairedStat
from mechanism.stats.evidence import Evidence

RATIO_THRESHOLD = 1.10    # interior gradient ratio (tail / non-tail) H1.content needs (SPEC §7.3)
QUANTILE_LEVELS = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class H1Config:
    """Settings of the H1 analysis."""
    seed: int = 0                        # seeds the bootstrap resamples
    n_boot: int = 1000                   # bootstrap resamples for 95% intervals (0 = none)
    batch_size: int = 32                 # images per flow batch
    max_images: int | None = None        # use the first n training images (sorted by name)
    top_k_ratio: float | None = None     # r defining the tail; None: the checkpoint's
    gradient_bins: int = 50              # histogram bins of the stored gradient distributions
    flip_control: bool = True            # run the model on flipped inputs (SPEC §7.3's control)

    def __post_init__(self):
        check_common_settings(self)
        if self.top_k_ratio is not None and not 0.0 < self.top_k_ratio <= 1.0:
            raise MechanismError(f"top-k ratio r must lie in (0, 1], got {self.top_k_ratio}")
        if self.gradient_bins < 1:
            raise MechanismError(f"gradient bins must be ≥ 1, got {self.gradient_bins}")


@dataclass(frozen=True)
class GradientDistribution:
    """Tail and non-tail patch gradients as histograms on shared bins and quantiles (fig3)."""
    bin_edges: tuple[float, ...]          # (B + 1,) bin edges, gradient units
    tail_counts: tuple[int, ...]          # (B,) tail patches per bin
    nontail_counts: tuple[int, ...]       # (B,) non-tail patches per bin
    quantile_levels: tuple[float, ...]    # (Q,) levels in [0, 1]
    tail_quantiles: tuple[float, ...]     # (Q,) tail gradient quantiles
    nontail_quantiles: tuple[float, ...]  # (Q,) non-tail gradient quantiles

    def __post_init__(self):
        bins = check_lengths(self, "tail_counts", "nontail_counts")
        check_lengths(self, "bin_edges", length=bins + 1)
        check_lengths(self, "quantile_levels", "tail_quantiles", "nontail_quantiles")


@dataclass(frozen=True)
class H1Paired:
    """Baseline (λ = 0) vs candidate on the same images, with the analysis' tail size k."""
    baseline_checkpoint: str             # the baseline checkpoint's label
    baseline_tail_weight: float          # λ of the baseline
    tail_distance_mean: PairedStat       # cells
    gradient_ratio: PairedStat | None    # None when either model's ratio is undefined
    note: str                            # why ``gradient_ratio`` is None ("" otherwise)


@dataclass(frozen=True)
class H1Result:
    """H1 numbers, figure data (fig2, fig3), the flip control and the evidence.

    ``tail_counts_map[i][j]``: how often cell ``(i, j)`` was a tail patch over all images;
    ``tail_share_map`` = counts / (images · k), which sums to 1 (uniform: 1/N per cell).
    ``tail_distance_counts[t]``: tail patches at edge distance ``t``;
    ``uniform_distance_pmf[t]``: ``P(d = t)`` for a uniform cell.
    """
    context: AnalysisContext
    tail_distance_mean: Interval                    # cells, bootstrap over images
    tail_distance_std: float                        # population std over all tail patches, cells
    uniform_distance_mean: float                    # cells, exact
    ks_statistic: float                             # D
    ks_p: float
    ks_method: str
    gradient_method: str
    gradient_tail_mean: float                       # mean patch gradient of tail patches
    gradient_nontail_mean: float                    # mean patch gradient of the other patches
    gradient_ratio: Interval | None                 # tail / non-tail, all cells; None: non-tail mean is 0
    mw_p: float | None                              # None: every patch gradient is equal
    interior_gradient_ratio: Interval | None        # tail / non-tail on interior cells (d ≥ 1)
    interior_mw_p: float | None                     # Mann-Whitney on interior cells
    cliffs_delta: Interval                          # tail vs non-tail gradients
    gradient_note: str                              # why a gradient statistic is None
    tail_counts_map: tuple[tuple[int, ...], ...]    # (H, W)
    tail_share_map: tuple[tuple[float, ...], ...]   # (H, W)
    tail_distance_counts: tuple[int, ...]           # (T,) T = max edge distance + 1
    uniform_distance_pmf: tuple[float, ...]         # (T,)
    gradient_distribution: GradientDistribution
    flip_control: FlipControl | None                # None: not run (H1Config.flip_control)
    paired: H1Paired | None
    evidence: Evidence

    def __post_init__(self):
        check_grid(self, "tail_counts_map", "tail_share_map",
                   shape=(self.context.grid_h, self.context.grid_w))
        check_lengths(self, "tail_distance_counts", "uniform_distance_pmf")
