"""H3's summary (bootstrap intervals — over training seeds × images with several seeds' models —,
amplification per condition, identities, paired baseline, claims) and the end-to-end run on a
checkpoint."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from mechanism.analyzers.context import (AnalysisContext, checkpoint_label, paired_stat,
                                         seeds_label, tail_setup, training_seeds)
from mechanism.analyzers.h3_gradient.claims import evidence, identities
from mechanism.analyzers.h3_gradient.gradients import BaselineMeasurement, ConditionSums, measure
from mechanism.analyzers.h3_gradient.result import (GRADIENT_UNIT, H3Condition, H3Config, H3Paired,
                                                    H3Result)
from mechanism.analyzers.h3_gradient.tail_excess import paired_tail_excess, tail_excess
from mechanism.data.mvtec import read_split
from mechanism.errors import MechanismError
from mechanism.eval.detector import Detector
from mechanism.stats.bootstrap import Interval, PairedStat, seeds_bootstrap


def _amplification_note(mean_only: ConditionSums, cond: ConditionSums) -> str:
    """Why ratio(λ) / ratio(0) is undefined ("" when it is defined)."""
    if mean_only.ratio_note():
        return f"mean-only ratio undefined ({mean_only.ratio_note()})"
    if mean_only.tail_sum.sum() == 0:
        return "mean-only tail gradient is exactly 0: its ratio is 0"
    if cond.ratio_note():
        return f"ratio at λ = {cond.tail_weight:g} undefined ({cond.ratio_note()})"
    return ""


def _statistics(conditions: Sequence[ConditionSums], prefix: str) -> dict:
    """Named bootstrap statistics of one model: per condition i tail/nontail means, ratio,
    Gini and non-tail share (when defined), and for i > 0 amplification and tail gain."""
    stats = {}
    mean_only = conditions[0]
    for i, c in enumerate(conditions):
        stats[f"{prefix}tail_{i}"] = c.tail_mean
        stats[f"{prefix}nontail_{i}"] = c.nontail_mean
        if not c.ratio_note():
            stats[f"{prefix}ratio_{i}"] = c.ratio
        if not np.isnan(c.gini).all():
            stats[f"{prefix}gini_{i}"] = c.gini_mean
        if c.tail_sum.sum() + c.nontail_sum.sum() > 0:
            stats[f"{prefix}nontail_share_{i}"] = c.nontail_share
        if i == 0:
            continue
        if not _amplification_note(mean_only, c):
            stats[f"{prefix}amplification_{i}"] = lambda idx, c=c: c.ratio(idx) / mean_only.ratio(idx)
        if mean_only.tail_sum.sum() > 0:
            stats[f"{prefix}tail_gain_{i}"] = lambda idx, c=c: c.tail_mean(idx) / mean_only.tail_mean(idx)
    return stats


def _paired(cand: Sequence[ConditionSums], base: BaselineMeasurement,
            intervals: dict[str, Interval], n_seeds: int) -> H3Paired:
    notes = []
    for model, conditions in (("candidate", cand), ("baseline", base.conditions)):
        notes += [f"{model}: {c.ratio_note()}" for c in conditions if c.ratio_note()]
    return H3Paired(seeds_label(base.label, n_seeds), base.tail_weight,
                    tuple(paired_stat(intervals, f"ratio_{i}") for i in range(len(cand))),
                    tuple(paired_stat(intervals, f"amplification_{i}") for i in range(len(cand))),
                    "; ".join(dict.fromkeys(notes)))


def _condition(seeds: Sequence[Sequence[ConditionSums]], i: int,
               intervals: dict[str, Interval]) -> H3Condition:
    """Condition ``i`` of the per-seed measurements ``seeds``: the intervals, the notes of the
    first seed's model, maps and per-image means averaged over seeds."""
    cand = seeds[0]
    c = cand[i]
    n = len(c.tail_sum)
    note = "" if i == 0 else _amplification_note(cand[0], c)
    if note and c.ratio_unbounded and not _amplification_note(cand[0], cand[0]):
        note = f"unbounded: {note}"
    other_seed = "undefined for another training seed's model"
    if i > 0 and f"amplification_{i}" not in intervals and not note:
        note = other_seed
    ratio_note = c.ratio_note() or (other_seed if f"ratio_{i}" not in intervals else "")
    gini_note = c.gini_note() or (other_seed if f"gini_{i}" not in intervals else "")
    per_seed = [m[i] for m in seeds]
    return H3Condition(
        c.tail_weight, intervals[f"tail_{i}"], intervals[f"nontail_{i}"],
        intervals.get(f"ratio_{i}"), intervals.get(f"gini_{i}"), ratio_note, gini_note,
        intervals.get(f"amplification_{i}"), note, intervals.get(f"tail_gain_{i}"),
        intervals.get(f"nontail_share_{i}"),
        tuple(tuple(float(v) for v in row) for row in np.mean([m.map_sum for m in per_seed], 0) / n),
        tuple(float(v) for v in np.mean([m.tail_sum for m in per_seed], 0) / c.k),
        tuple(float(v) for v in np.mean([m.nontail_sum for m in per_seed], 0) / (c.n_patches - c.k)))


def summarise(cand: Sequence[ConditionSums], context: AnalysisContext, own_tail_weight: float,
              interact: bool, direct: Sequence[ConditionSums] | None,
              baseline: BaselineMeasurement | None = None, tail_excess: PairedStat | None = None,
              tail_excess_images: int = 0, tail_excess_seeds: int = 0,
              replicates: Sequence[tuple[Sequence[ConditionSums], BaselineMeasurement | None]] = ()
              ) -> H3Result:
    """The H3 result of measured conditions (``cand[0]`` at λ = 0, sorted by λ), bootstrapped
    with ``context.n_boot`` resamples seeded by ``context.seed``.

    Args:
        own_tail_weight: λ the analysed checkpoint was trained with.
        interact: whether the flow's patches interact (H3.survives_interaction applies).
        direct: the same conditions measured on own-path gradients (the identity checks;
            ``cand`` itself for non-interacting patches; None: paths not separable).
        tail_excess: H3.training's paired measurement on ``tail_excess_images`` good test
            images of ``tail_excess_seeds`` seed pairs.
        replicates: (candidate, baseline) measurements of further training seeds' models on
            the same images and conditions: every interval then runs over seeds × images
            (``seeds_bootstrap``), each statistic the mean over seeds.

    Raises:
        MechanismError: if the first condition is not λ = 0, or a baseline or replicate was
            measured on other conditions or another number of images.
    """
    lambdas = [c.tail_weight for c in cand]
    if lambdas[0] != 0.0 or lambdas != sorted(lambdas) or len(lambdas) < 2:
        raise MechanismError(f"H3 needs conditions sorted by λ from λ = 0, got {lambdas}")
    n = len(cand[0].tail_sum)
    seeds = [(cand, baseline), *replicates]
    for conditions, base in seeds:
        for measured in (conditions, None if base is None else base.conditions):
            if measured is not None and ([c.tail_weight for c in measured] != lambdas
                                         or len(measured[0].tail_sum) != n):
                raise MechanismError("a baseline or replicate was measured on other conditions "
                                     "or images")
        if (base is None) != (baseline is None):
            raise MechanismError("H3's seed replicates must all have a baseline, or none")
    intervals = seeds_bootstrap([_seed_statistics(c, b) for c, b in seeds], n, context.n_boot,
                                context.seed)
    conditions = tuple(_condition([c for c, _ in seeds], i, intervals) for i in range(len(cand)))
    n_over_k = context.n_patches / context.k
    ids = identities(direct, lambdas, n_over_k)
    return H3Result(
        context=context, gradient_unit=GRADIENT_UNIT, conditions=conditions,
        own_tail_weight=float(own_tail_weight), theoretical_amplification=n_over_k,
        tail_excess=tail_excess, tail_excess_images=tail_excess_images,
        tail_excess_seeds=tail_excess_seeds,
        paired=None if baseline is None else _paired(cand, baseline, intervals, len(seeds)),
        evidence=evidence(conditions, own_tail_weight, n_over_k, interact, tail_excess, n,
                          tail_excess_images, tail_excess_seeds, ids, context.n_seeds))


def _seed_statistics(cand: Sequence[ConditionSums], baseline: BaselineMeasurement | None) -> dict:
    """One seed's named statistics: the candidate's, and with a baseline its ratios and
    amplifications and the differences."""
    stats = _statistics(cand, "")
    if baseline is not None:
        base_stats = _statistics(baseline.conditions, "baseline_")
        for name in [s for s in stats if s.startswith(("ratio_", "amplification_"))]:
            if f"baseline_{name}" in base_stats:
                stats[f"baseline_{name}"] = base_stats[f"baseline_{name}"]
                stats[f"difference_{name}"] = \
                    lambda idx, c=stats[name], b=base_stats[f"baseline_{name}"]: c(idx) - b(idx)
    return stats


def _good_test_excess(pairs: list[tuple[Detector, Detector]], data_root: str | Path,
                      category: str, k: int, cfg: H3Config, cache_dir: Path | None,
                      progress: bool) -> tuple[PairedStat, int]:
    """H3.training's measurement on the good test images of every (candidate, baseline) pair."""
    good = [s for s in read_split(data_root, category, "test") if s.defect == "good"]
    if not good:
        raise MechanismError(f"category {category!r} has no test/good images for H3.training")

    def excess(det: Detector) -> np.ndarray:
        return tail_excess(det.patch_nll(det.features(good, cache_dir, progress), cfg.batch_size), k)

    values = [(excess(c), excess(b)) for c, b in pairs]
    return paired_tail_excess(values, cfg.n_boot, cfg.seed), len(good)


def run(detector: Detector, data_root: str | Path, category: str, cfg: H3Config = H3Config(),
        baseline: Detector | None = None, replicates: tuple[tuple[Detector, Detector], ...] = (),
        cache_dir: Path | None = None, progress: bool = True) -> H3Result:
    """Run H3 on the training images of ``category``.

    The conditions are ``cfg.conditions(own λ)``. The baseline is measured with the same
    conditions and k, its own tail (top-k by its own NLL), on the analysed checkpoint's features
    when both share a backbone; with a baseline, H3.training compares both models' NLL tails on
    the good test images.

    Args:
        detector: the analysed checkpoint.
        baseline: a (λ = 0) checkpoint with the same grid; adds the paired table and H3.training.
        replicates: (candidate, baseline) checkpoints of further training seeds: H3.training
            pairs them, and every gradient statistic runs over seeds × images.
        cache_dir: feature cache folder (``None``: no cache).

    Raises:
        MechanismError: for missing data, k = N (no non-tail patches), a baseline on another
            grid, or non-finite NLLs.
    """
    ckpt = detector.ckpt
    h, w, r, k = tail_setup(ckpt, cfg.top_k_ratio, "H3", baseline.ckpt if baseline is not None else None)
    n_patches = h * w
    lambdas = cfg.conditions(ckpt.loss.tail_weight)
    samples = read_split(data_root, category, "train")[:cfg.max_images]
    features = detector.features(samples, cache_dir, progress)
    flow = detector.flow
    cand = measure(flow, features, lambdas, r, cfg.batch_size, progress)
    direct = cand if not flow.patches_interact else None
    if flow.patches_interact and flow.separable_paths:
        with flow.own_paths_only():
            direct = measure(flow, features, lambdas, r, cfg.batch_size, progress,
                             "H3 gradients (own paths)")

    def measure_baseline(model: Detector) -> BaselineMeasurement:
        feats = features if model.ckpt.backbone == ckpt.backbone else \
            model.features(samples, cache_dir, progress)
        return BaselineMeasurement(checkpoint_label(model.ckpt), model.ckpt.loss.tail_weight,
                                   measure(model.flow, feats, lambdas, r, cfg.batch_size, progress,
                                           "H3 gradients (baseline)"))

    seed_numbers = training_seeds([m.ckpt for m in (detector, *(c for c, _ in replicates))], "H3")
    seeds = [(measure(c.flow, features, lambdas, r, cfg.batch_size, progress,
                      f"H3 gradients (seed {c.ckpt.train.seed})"),
              None if baseline is None else measure_baseline(b)) for c, b in replicates]
    base, excess, n_test, n_pairs = None, None, 0, 0
    if baseline is not None:
        base = measure_baseline(baseline)
        pairs = [(detector, baseline), *replicates]
        excess, n_test = _good_test_excess(pairs, data_root, category, k, cfg, cache_dir, progress)
        n_pairs = len(pairs)
    context = AnalysisContext(checkpoint_label(ckpt), category, "train", len(samples), h, w,
                              n_patches, k, float(r), cfg.seed, cfg.n_boot,
                              seed_numbers)
    return summarise(cand, context, ckpt.loss.tail_weight, flow.patches_interact, direct, base,
                     excess, n_test, n_pairs, seeds)
