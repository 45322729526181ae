"""H3's settings, thresholds and frozen result records."""
from __future__ import annotations

from dataclasses import dataclass

from mechanism.analyzers.context import AnalysisContext, check_common_settings
from mechanism.errors import MechanismError
from mechanism.io.serialize import check_grid, check_lengths
from mechanism.stats.bootstrap import Interval, PairedStat
from mechanism.stats.evidence import Evidence

SURVIVING_SHARE = 0.5      # H3.survives_interaction: amplification ≥ 0.5 × its identity (SPEC §7.3)
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
    lambdas: tuple[float, ...] | None = None   # loss conditions λ ∈ [0, 1], must include 0;
                                               # None: 0, the checkpoint's own λ and 1
    top_k_ratio: float | None = None           # r defining k and the tail; None: the checkpoint's

    def __post_init__(self):
        check_common_settings(self)
        if self.top_k_ratio is not None and not 0.0 < self.top_k_ratio <= 1.0:
            raise MechanismError(f"top-k ratio r must lie in (0, 1], got {self.top_k_ratio}")
        if self.lambdas is None:
            return
        lambdas = tuple(float(v) for v in self.lambdas)
        if any(not 0.0 <= v <= 1.0 for v in lambdas):
            raise MechanismError(f"H3 conditions λ must lie in [0, 1], got {lambdas}")
        if len(set(lambdas)) != len(lambdas):
            raise MechanismError(f"H3 conditions λ must be distinct, got {lambdas}")
        if 0.0 not in lambdas or len(lambdas) < 2:
            raise MechanismError(f"H3 needs λ = 0 (mean-only) and at least one λ > 0 to compare, "
                                 f"got {lambdas}")
        object.__setattr__(self, "lambdas", tuple(sorted(lambdas)))

    def conditions(self, own_tail_weight: float) -> tuple[float, ...]:
        """The λ conditions to measure: the configured ones, or 0, ``own_tail_weight`` and 1."""
        if self.lambdas is not None:
            return self.lambdas
        return tuple(sorted({0.0, float(own_tail_weight), 1.0}))


def amplification_identity(tail_weight: float, n_over_k: float) -> float | None:
    """ratio(λ) / ratio(0) for non-interacting patches: ``1 + λN / ((1 − λ)k)``; None at λ = 1
    (the non-tail gradient is then exactly 0: unbounded)."""
    if tail_weight >= 1.0:
        return None
    return 1.0 + tail_weight * n_over_k / (1.0 - tail_weight)


def tail_gain_identity(tail_weight: float, n_over_k: float) -> float:
    """tail gradient(λ) / tail gradient(0) for non-interacting patches: ``1 − λ + λN/k``."""
    return 1.0 - tail_weight + tail_weight * n_over_k


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
    amplification: Interval | None                     # ratio(λ) / ratio(0); None at λ = 0 or: note
    amplification_note: str                            # why amplification is None ("" otherwise)
    tail_gain: Interval | None                         # tail g(λ) / tail g(0); None if tail g(0) = 0
    nontail_share: Interval | None                     # share of Σ g on non-tail patches; at λ = 1
                                                       # the leakage through the spatial context
    mean_gradient_map: tuple[tuple[float, ...], ...]   # (H, W) mean g over images
    image_tail_gradient: tuple[float, ...]             # (n,) each image's mean tail g
    image_nontail_gradient: tuple[float, ...]          # (n,) each image's mean non-tail g

    def __post_init__(self):
        check_grid(self, "mean_gradient_map")
        check_lengths(self, "image_tail_gradient", "image_nontail_gradient")

    @property
    def label(self) -> str:
        """Row name of the study's table."""
        if self.tail_weight == 0:
            return "Mean-only (λ=0)"
        if self.tail_weight == 1:
            return "Tail-aware (λ=1)"
        return f"Mixed (λ={self.tail_weight:g})"

    def label_for(self, own_tail_weight: float) -> str:
        """``label``, marked when λ is the analysed checkpoint's own."""
        return self.label + (" — the checkpoint's λ" if self.tail_weight == own_tail_weight else "")


@dataclass(frozen=True)
class H3Paired:
    """Baseline vs candidate on the same images and resamples (each with its own tail, same k)."""
    baseline_checkpoint: str                 # the baseline checkpoint's label
    baseline_tail_weight: float              # λ the baseline was trained with
    ratio: tuple[PairedStat | None, ...]     # per condition, in the order of ``H3Result.conditions``
    amplification: tuple[PairedStat | None, ...]   # per condition (None at λ = 0 or undefined)
    note: str                                # why a paired statistic is None ("" otherwise)


@dataclass(frozen=True)
class H3Result:
    """H3 numbers, figure data (fig1), the identity checks and claims."""
    context: AnalysisContext
    gradient_unit: str
    conditions: tuple[H3Condition, ...]        # sorted by λ; the first is λ = 0
    own_tail_weight: float                     # λ the analysed checkpoint was trained with
    theoretical_amplification: float           # N / k
    tail_excess: PairedStat | None             # H3.training: mean top-k NLL − mean NLL per good
                                               # test image (nats/dim), baseline vs candidate,
                                               # mean over seed pairs
    tail_excess_images: int                    # good test images behind tail_excess (0: none)
    tail_excess_seeds: int                     # S: seed pairs behind tail_excess (0: none)
    paired: H3Paired | None
    evidence: Evidence

    def __post_init__(self):
        if not self.conditions:
            raise ValueError("conditions: expected at least the λ = 0 condition")
        if self.paired is not None:
            check_lengths(self.paired, "ratio", "amplification", length=len(self.conditions))
        for condition in self.conditions:   # one analysis: every condition on the same grid and images
            check_grid(condition, "mean_gradient_map", shape=(self.context.grid_h, self.context.grid_w))
            check_lengths(condition, "image_tail_gradient", "image_nontail_gradient",
                          length=len(self.conditions[0].image_tail_gradient))

    @property
    def tail_aware(self) -> H3Condition:
        """The condition with the largest λ."""
        return self.conditions[-1]

    def condition(self, tail_weight: float) -> H3Condition:
        """The condition measured at λ = ``tail_weight`` (KeyError if none)."""
        for c in self.conditions:
            if c.tail_weight == tail_weight:
                return c
        raise KeyError(tail_weight)
