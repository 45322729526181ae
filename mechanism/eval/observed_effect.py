"""The observed effect of tail training: baseline → tail-aware detection metrics on the same test
images, with paired 95% bootstrap intervals over images (the report's first section).

Point estimates are the exact metrics of SPEC §3 (sklearn on the raw maps). Intervals resample
test images with replacement, the same resamples for both models, so the difference interval is
paired; pixel metrics of a resample come from per-image histograms over shared score bins
(``mechanism.eval.metrics.resampled``). AUPRO has no interval (its region overlap per threshold is
not a per-image sum).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mechanism.errors import MechanismError
from mechanism.eval.evaluate import Evaluation
from mechanism.eval.metrics.resampled import (DEFAULT_BINS, auroc_from_counts,
                                              average_precision_from_counts, bin_pixels,
                                              image_auroc_weighted, resample_weights)
from mechanism.eval.scoring import MAP_SCORE_WORDS
from mechanism.stats.bootstrap import Interval, PairedStat, percentile_interval

OBSERVED_METRICS = ("pixel_ap", "image_auroc", "pixel_auroc")   # with paired intervals; AUPRO apart


@dataclass(frozen=True)
class ObservedEffect:
    """Baseline and tail-aware metrics on one category's test images, paired."""
    category: str
    baseline: str                          # checkpoint labels
    candidate: str
    n_good: int
    n_defective: int
    metrics: dict[str, PairedStat]         # OBSERVED_METRICS keys; fractions in [0, 1]
    aupro: tuple[float, float]             # (baseline, candidate), no interval
    seed: int
    n_boot: int
    interval_method: str


def _resampled(ev: Evaluation, weights: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    """Each metric on each resample ``(B,)``."""
    binned = bin_pixels(ev.maps, ev.masks, n_bins)
    pos, neg = weights @ binned.positives, weights @ binned.negatives
    return {"pixel_ap": average_precision_from_counts(pos, neg),
            "pixel_auroc": auroc_from_counts(pos, neg),
            "image_auroc": image_auroc_weighted(ev.scores, ev.labels, weights)}


def observed_effect(baseline: Evaluation, candidate: Evaluation, baseline_label: str,
                    candidate_label: str, n_boot: int = 1000, seed: int = 0,
                    n_bins: int = DEFAULT_BINS) -> ObservedEffect:
    """Compare two evaluations of the same test images (same order, same masks).

    Raises:
        MechanismError: the evaluations cover different images, or ``n_boot`` < 0.
    """
    if [s.path for s in baseline.samples] != [s.path for s in candidate.samples]:
        raise MechanismError("baseline and tail-aware evaluations cover different test images")
    scoring = {(ev.map_score, ev.image_score, ev.sigma) for ev in (baseline, candidate)}
    if len(scoring) > 1:
        raise MechanismError(f"baseline and tail-aware evaluations were scored differently: {sorted(scoring)}")
    if n_boot < 0:
        raise MechanismError(f"bootstrap resamples must be ≥ 0, got {n_boot}")
    points = {role: ev.metrics.to_dict() for role, ev in (("baseline", baseline), ("candidate", candidate))}
    metrics = {}
    if n_boot:
        weights = resample_weights(len(baseline.labels), n_boot, seed)
        draws = {role: _resampled(ev, weights, n_bins)
                 for role, ev in (("baseline", baseline), ("candidate", candidate))}
    for key in OBSERVED_METRICS:
        b, c = points["baseline"][key], points["candidate"][key]
        if n_boot:
            db, dc = draws["baseline"][key], draws["candidate"][key]
            metrics[key] = PairedStat(percentile_interval(b, db), percentile_interval(c, dc),
                                      percentile_interval(c - b, dc - db))
        else:
            metrics[key] = PairedStat(*(Interval(v, None, None, 0.95, 0, 0, "no bootstrap requested")
                                        for v in (b, c, c - b)))
    scored = (f"maps of the per-patch {MAP_SCORE_WORDS[baseline.map_score]}, blur σ = "
              f"{baseline.sigma:g} px; image score {baseline.image_score}")
    method = scored + ("; " + f"95% percentile bootstrap over test images, B = {n_boot}, the same "
                       f"resamples for both models; pixel metrics of a resample from per-image "
                       f"counts on ≤ {n_bins} equal-count score bins" if n_boot
                       else "; no bootstrap requested")
    return ObservedEffect(baseline.samples[0].category, baseline_label, candidate_label,
                          int((baseline.labels == 0).sum()), int(baseline.labels.sum()), metrics,
                          (points["baseline"]["aupro"], points["candidate"]["aupro"]), seed,
                          n_boot, method)
