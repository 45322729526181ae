"""H3's settings, thresholds and frozen result records."""
from __future__ import annotations

from dataclasses import dataclass

from mechanism.analyzers.context import AnalysisContext, Verdict, check_common_settings
from mechanism.errors import MechanismError
from mechanism.stats.bootstrap import Interval, PairedStat

SUPPORT_SHARE = 0.5        # SUPPORTED needs amplification ≥ 0.5 · N/k (SPEC §4 H3)
PARTIAL_AMPLIFICATION = 2.0  # PARTIAL needs amplification > 2
GRADIENT_UNIT = ("‖∂L/∂x[:, h, w]‖₂ per patch: L = the image's own Tail-Aware Loss (nats per "
                 "dimension) of the checkpoint's flow in eval mode, x = its input backbone "
                 "features; backward passes of the sum of the images' losses, so a map does "
                 "not depend on the batch size")


@dataclass(frozen=True)
class H3Config:
    """Settings of the H3 analysis."""
    seed: int = 0                              # seeds the bootstrap resamples
    n_boot: int = 1000                         # bootstrap resamples for 95% intervals (0 = none)
    batch_size: int = 32                       # images per forward/backward batch
    max_images: int | None = None              # use the first n training images (sorted by name)
    lambdas: tuple[float, ...] = (0.0, 1.0)    # loss conditions λ ∈ [0, 1]; must include 0
    top_k_ratio: float | None = None           # r defining k and the tail; None: the checkpoint's

    def __post_init__(self):
        check_common_settings(self)
        if self.top_k_ratio is not None and not 0.0 < self.top_k_ratio <= 1.0:
            raise MechanismError(f"top-k ratio r must lie in (0, 1], got {self.top_k_ratio}")
        lambdas = tuple(float(v) for v in self.lambdas)
        if any(not 0.0 <= v <= 1.0 for v in lambdas):
            raise MechanismError(f"H3 conditions λ must lie in [0, 1], got {lambdas}")
        if len(set(lambdas)) != len(lambdas):
            raise MechanismError(f"H3 conditions λ must be distinct, got {lambdas}")
        if 0.0 not in lambdas or len(lambdas) < 2:
            raise MechanismError(f"H3 needs λ = 0 (mean-only) and at least one λ > 0 to compare, "
                                 f"got {lambdas}")
        object.__setattr__(self, "lambdas", tuple(sorted(lambdas)))


@dataclass(frozen=True)
class H3Condition:
    """Gradient concentration of the analysed model under one λ."""
    tail_weight: float                                 # λ
    tail_gradient: Interval                            # mean g over tail patches (pooled)
    nontail_gradient: Interval                         # mean g over the other patches (pooled)
    ratio: Interval | None                             # tail / non-tail; None: see ratio_note
    gini: Interval | None                              # mean of the images' Gini; None: gini_note
    ratio_note: str                                    # why ratio is None ("" otherwise)
    gini_note: str                                     # why gini is None or images left out
    mean_gradient_map: tuple[tuple[float, ...], ...]   # (H, W) mean g over images
    image_tail_gradient: tuple[float, ...]             # (n,) each image's mean tail g
    image_nontail_gradient: tuple[float, ...]          # (n,) each image's mean non-tail g

    @property
    def label(self) -> str:
        """Row name of the study's table."""
        if self.tail_weight == 0:
            return "Mean-only (λ=0)"
        if self.tail_weight == 1:
            return "Tail-aware (λ=1)"
        return f"Mixed (λ={self.tail_weight:g})"


@dataclass(frozen=True)
class H3Paired:
    """Baseline vs candidate on the same images and resamples (each with its own tail, same k)."""
    baseline_checkpoint: str                 # the baseline checkpoint's label
    baseline_tail_weight: float              # λ the baseline was trained with
    ratio: tuple[PairedStat | None, ...]     # per condition, in the order of ``H3Result.conditions``
    amplification: PairedStat | None
    note: str                                # why a paired statistic is None ("" otherwise)


@dataclass(frozen=True)
class H3Result:
    """H3 numbers, figure data (fig1) and verdict."""
    context: AnalysisContext
    gradient_unit: str
    conditions: tuple[H3Condition, ...]        # sorted by λ; the first is λ = 0
    amplification: Interval | None             # ratio(largest λ) / ratio(λ = 0); None: see note
    amplification_unbounded: bool              # None because the tail-aware ratio is unbounded
    amplification_note: str                    # why amplification is None ("" otherwise)
    theoretical_amplification: float           # N / k
    amplification_share: float | None          # amplification / (N/k)
    tail_gain: Interval | None                 # tail g(largest λ) / tail g(λ = 0)
    tail_gain_theory: float                    # 1 − λ + λ·N/k (exact without patch interaction)
    paired: H3Paired | None
    verdict: Verdict
    verdict_reason: str

    @property
    def tail_aware(self) -> H3Condition:
        """The condition with the largest λ (the amplification's numerator)."""
        return self.conditions[-1]
