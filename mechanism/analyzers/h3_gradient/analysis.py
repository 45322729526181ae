"""H3's summary (bootstrap intervals, amplification, paired baseline, verdict) and the
end-to-end run on a checkpoint."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from mechanism.analyzers.context import AnalysisContext, checkpoint_label, paired_stat, tail_setup
from mechanism.analyzers.h3_gradient.gradients import BaselineMeasurement, ConditionSums, measure
from mechanism.analyzers.h3_gradient.result import (GRADIENT_UNIT, H3Condition, H3Config, H3Paired,
                                                    H3Result)
from mechanism.analyzers.h3_gradient.verdict import verdict
from mechanism.data.mvtec import read_split
from mechanism.errors import MechanismError
from mechanism.eval.detector import Detector
from mechanism.stats.bootstrap import Interval, bootstrap


def _amplification_note(mean_only: ConditionSums, tail_aware: ConditionSums) -> str:
    """Why ratio(tail-aware) / ratio(mean-only) is undefined ("" when it is defined)."""
    if mean_only.ratio_note():
        return f"mean-only ratio undefined ({mean_only.ratio_note()})"
    if mean_only.tail_sum.sum() == 0:
        return "mean-only tail gradient is exactly 0: its ratio is 0"
    if tail_aware.ratio_note():
        return f"tail-aware ratio undefined ({tail_aware.ratio_note()})"
    return ""


def _amplification(mean_only: ConditionSums, tail_aware: ConditionSums):
    return lambda idx: tail_aware.ratio(idx) / mean_only.ratio(idx)


def _statistics(conditions: Sequence[ConditionSums], prefix: str) -> dict:
    """Named bootstrap statistics of one model: per condition i tail/nontail means, ratio and
    Gini (when defined), and amplification and tail gain (when defined)."""
    stats = {}
    for i, c in enumerate(conditions):
        stats[f"{prefix}tail_{i}"] = c.tail_mean
        stats[f"{prefix}nontail_{i}"] = c.nontail_mean
        if not c.ratio_note():
            stats[f"{prefix}ratio_{i}"] = c.ratio
        if not np.isnan(c.gini).all():
            stats[f"{prefix}gini_{i}"] = c.gini_mean
    mean_only, tail_aware = conditions[0], conditions[-1]
    if not _amplification_note(mean_only, tail_aware):
        stats[f"{prefix}amplification"] = _amplification(mean_only, tail_aware)
    if mean_only.tail_sum.sum() > 0:
        stats[f"{prefix}tail_gain"] = lambda idx: tail_aware.tail_mean(idx) / mean_only.tail_mean(idx)
    return stats


def _paired(cand: Sequence[ConditionSums], base: BaselineMeasurement,
            intervals: dict[str, Interval]) -> H3Paired:
    notes = []
    for model, conditions in (("candidate", cand), ("baseline", base.conditions)):
        notes += [f"{model}: {c.ratio_note()}" for c in conditions if c.ratio_note()]
        amp_note = _amplification_note(conditions[0], conditions[-1])
        if amp_note:
            notes.append(f"{model} amplification: {amp_note}")
    return H3Paired(base.label, base.tail_weight,
                    tuple(paired_stat(intervals, f"ratio_{i}") for i in range(len(cand))),
                    paired_stat(intervals, "amplification"),
                    "; ".join(dict.fromkeys(notes)))


def _condition(c: ConditionSums, i: int, intervals: dict[str, Interval]) -> H3Condition:
    n = len(c.tail_sum)
    return H3Condition(
        c.tail_weight, intervals[f"tail_{i}"], intervals[f"nontail_{i}"],
        intervals.get(f"ratio_{i}"), intervals.get(f"gini_{i}"), c.ratio_note(), c.gini_note(),
        tuple(tuple(float(v) for v in row) for row in c.map_sum / n),
        tuple(float(v) for v in c.tail_sum / c.k),
        tuple(float(v) for v in c.nontail_sum / (c.n_patches - c.k)))


def summarise(cand: Sequence[ConditionSums], context: AnalysisContext,
              baseline: BaselineMeasurement | None = None) -> H3Result:
    """The H3 result of measured conditions (``cand[0]`` at λ = 0, sorted by λ), bootstrapped
    with ``context.n_boot`` resamples seeded by ``context.seed``.

    Raises:
        MechanismError: if the first condition is not λ = 0, or the baseline was measured on
            other conditions or another number of images.
    """
    lambdas = [c.tail_weight for c in cand]
    if lambdas[0] != 0.0 or lambdas != sorted(lambdas) or len(lambdas) < 2:
        raise MechanismError(f"H3 needs conditions sorted by λ from λ = 0, got {lambdas}")
    n = len(cand[0].tail_sum)
    stats = _statistics(cand, "")
    if baseline is not None:
        if [c.tail_weight for c in baseline.conditions] != lambdas or \
                len(baseline.conditions[0].tail_sum) != n:
            raise MechanismError("the baseline was measured on other conditions or images")
        base_stats = _statistics(baseline.conditions, "baseline_")
        for name in [s for s in stats if s.startswith(("ratio_", "amplification"))]:
            if f"baseline_{name}" in base_stats:
                stats[f"baseline_{name}"] = base_stats[f"baseline_{name}"]
                stats[f"difference_{name}"] = \
                    lambda idx, c=stats[name], b=base_stats[f"baseline_{name}"]: c(idx) - b(idx)
    intervals = bootstrap(stats, n, context.n_boot, context.seed)

    mean_only, tail_aware = cand[0], cand[-1]
    amplification = intervals.get("amplification")
    amp_note = _amplification_note(mean_only, tail_aware)
    unbounded = amplification is None and not mean_only.ratio_note() and \
        mean_only.tail_sum.sum() > 0 and tail_aware.ratio_unbounded
    theory = context.n_patches / context.k
    lam = tail_aware.tail_weight
    decision, reason = verdict(None if amplification is None else amplification.estimate,
                               context.n_patches, context.k, unbounded, amp_note)
    return H3Result(
        context=context, gradient_unit=GRADIENT_UNIT,
        conditions=tuple(_condition(c, i, intervals) for i, c in enumerate(cand)),
        amplification=amplification, amplification_unbounded=unbounded,
        amplification_note=amp_note, theoretical_amplification=theory,
        amplification_share=None if amplification is None else amplification.estimate / theory,
        tail_gain=intervals.get("tail_gain"), tail_gain_theory=1.0 - lam + lam * theory,
        paired=None if baseline is None else _paired(cand, baseline, intervals),
        verdict=decision, verdict_reason=reason)


def run(detector: Detector, data_root: str | Path, category: str, cfg: H3Config = H3Config(),
        baseline: Detector | None = None, cache_dir: Path | None = None,
        progress: bool = True) -> H3Result:
    """Run H3 on the training images of ``category``.

    The baseline is measured with the same λ conditions and k, its own tail (top-k by its own
    NLL), on the analysed checkpoint's features when both share a backbone.

    Args:
        detector: the analysed checkpoint.
        baseline: a (λ = 0) checkpoint with the same grid; adds the paired table.
        cache_dir: feature cache folder (``None``: no cache).

    Raises:
        MechanismError: for missing data, k = N (no non-tail patches), a baseline on another
            grid, or non-finite NLLs.
    """
    ckpt = detector.ckpt
    h, w, r, k = tail_setup(ckpt, cfg.top_k_ratio, "H3", baseline.ckpt if baseline is not None else None)
    n_patches = h * w
    samples = read_split(data_root, category, "train")[:cfg.max_images]
    features = detector.features(samples, cache_dir, progress)
    cand = measure(detector.flow, features, cfg.lambdas, r, cfg.batch_size, progress)
    base = None
    if baseline is not None:
        if baseline.ckpt.backbone != ckpt.backbone:
            features = baseline.features(samples, cache_dir, progress)
        base = BaselineMeasurement(
            checkpoint_label(baseline.ckpt), baseline.ckpt.loss.tail_weight,
            measure(baseline.flow, features, cfg.lambdas, r, cfg.batch_size, progress,
                    "H3 gradients (baseline)"))
    context = AnalysisContext(checkpoint_label(ckpt), category, "train", len(samples), h, w,
                              n_patches, k, float(r), cfg.seed, cfg.n_boot)
    return summarise(cand, context, base)
