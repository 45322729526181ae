"""The observed effect of a training change: baseline → candidate detection metrics on the same
test images over S training seeds, with paired 95% intervals over seeds × images (SPEC §7.2).

It serves the headline (λ = 0 → the tail-aware λ), the random-k control (random-k → top-k at
the same λ and r) and H4's pre-registered contrasts (r = 10% or 100% → r = 2%). Seed i of the
baselines is paired with seed i of the candidates (same data order and initialisation seed).

Point estimates are the mean over seeds of each seed's exact metrics (SPEC §3; sklearn and the
reference AUPRO on the raw maps). Intervals: two-stage percentile bootstrap — draw S seeds with
replacement, and the test images with replacement once for all drawn seeds (every seed is
evaluated on the same test set, so images are crossed with seeds, not nested in them: drawing
them anew for each seed would shrink the test-set variance by about S); the same resample for
both roles, so the difference is paired; a resample's value is the mean over its drawn seeds.
Seed draws follow the analysis seed, image draws the analysis seed and the category
(``resample_seed``): a study's categories share their seed draws (seed s starts from the same
initialisation in every category) and draw their images independently (§7.2's macro mean).
The metrics of a resample come from per-image counts over shared score bins
(``mechanism.eval.metrics.resampled``); each role's draws are shifted by its binning offset
(exact − binned on all images), so the interval sits around the exact estimate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mechanism.errors import MechanismError
from mechanism.eval.evaluate import Evaluation
from mechanism.eval.metrics.resampled import (DEFAULT_BINS, BinnedPixels, aupro_from_counts,
                                              auroc_from_counts, average_precision_from_counts,
                                              bin_pixels, image_auroc_weighted)
from mechanism.eval.scoring import MAP_SCORE_WORDS
from mechanism.stats.bootstrap import (Interval, PairedStat, percentile_interval, resample_seed,
                                      two_stage_resamples)

OBSERVED_METRICS = ("pixel_ap", "image_auroc", "pixel_auroc", "aupro")


@dataclass(frozen=True)
class ObservedEffect:
    """Baseline and candidate metrics on one category's test images over S seeds, paired."""
    category: str
    baseline: str                          # what the baseline is (condition and checkpoints)
    candidate: str
    n_seeds: int                           # S: training seeds per role
    n_good: int
    n_defective: int
    metrics: dict[str, PairedStat]         # OBSERVED_METRICS keys; fractions in [0, 1]
    seed: int
    n_boot: int
    scoring: str                           # the maps and image score compared
    interval_method: str


def _resampled(ev: Evaluation, binned: BinnedPixels, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric on each weight row ``(B, n)`` → ``(B,)``."""
    pos, neg = weights @ binned.positives, weights @ binned.negatives
    return {"pixel_ap": average_precision_from_counts(pos, neg),
            "pixel_auroc": auroc_from_counts(pos, neg),
            "image_auroc": image_auroc_weighted(ev.scores, ev.labels, weights),
            "aupro": aupro_from_counts(neg, weights @ binned.region_overlap,
                                       weights @ binned.n_regions)}


def _draws(evaluations: Sequence[Evaluation], resamples, n_bins: int) -> dict[str, np.ndarray]:
    """``(B, S)`` value of each metric for slot j of resample b (its drawn seed and images),
    shifted by the seed's binning offset (exact − binned value on all images)."""
    n_boot, n_seeds, n = len(resamples), len(evaluations), len(evaluations[0].labels)
    out = {key: np.full((n_boot, n_seeds), np.nan) for key in OBSERVED_METRICS}
    slots = [(b, j, s, idx) for b, draw in enumerate(resamples) for j, (s, idx) in enumerate(draw)]
    for s, ev in enumerate(evaluations):
        mine = [(b, j, idx) for b, j, seed_index, idx in slots if seed_index == s]
        if not mine:
            continue
        weights = np.stack([np.ones(n)] + [np.bincount(idx, minlength=n) for _, _, idx in mine])
        values = _resampled(ev, bin_pixels(ev.maps, ev.masks, n_bins), weights.astype(np.float64))
        rows, cols = np.array([m[0] for m in mine]), np.array([m[1] for m in mine])
        for key in OBSERVED_METRICS:
            offset = getattr(ev.metrics, key) - values[key][0]
            out[key][rows, cols] = values[key][1:] + offset
    return out


def _check(baselines: Sequence[Evaluation], candidates: Sequence[Evaluation], n_boot: int,
           same_scoring: bool = True) -> None:
    if not baselines or len(baselines) != len(candidates):
        raise MechanismError(f"paired seeds needed: {len(baselines)} baseline and "
                             f"{len(candidates)} candidate evaluations")
    paths = [s.path for s in baselines[0].samples]
    if any([s.path for s in ev.samples] != paths for ev in (*baselines, *candidates)):
        raise MechanismError("the baseline and candidate evaluations cover different test images")
    if same_scoring:
        scoring = {(ev.map_score, ev.image_score, ev.sigma) for ev in (*baselines, *candidates)}
        if len(scoring) > 1:
            raise MechanismError(f"the evaluations were scored differently: {sorted(scoring)}")
    if n_boot < 0:
        raise MechanismError(f"bootstrap resamples must be ≥ 0, got {n_boot}")


def effect_draws(baselines: Sequence[Evaluation], candidates: Sequence[Evaluation], n_boot: int,
                 seed: int = 0, n_bins: int = DEFAULT_BINS, same_scoring: bool = True
                 ) -> dict[str, np.ndarray]:
    """Each metric's resampled (baseline, candidate, candidate − baseline) means over the drawn
    seeds, ``(n_boot, 3)`` per ``OBSERVED_METRICS`` key. The seed draws follow ``seed`` alone, so
    categories with the same training seeds (same initialisations and data orders) share them;
    the image draws follow ``seed`` and the category (``resample_seed``), so different
    categories' images draw independently and one category's draws are the same wherever they
    are computed.

    Only the evaluations' ``metrics``, ``maps``, ``masks``, ``labels``, ``scores`` and
    ``samples`` are read (and their scoring fields, unless ``same_scoring`` is False: two
    detectors each scored its own way, e.g. a benchmark against another method).

    Raises:
        MechanismError: as ``observed_effect``; ``n_boot`` < 1.
    """
    _check(baselines, candidates, n_boot, same_scoring)
    if n_boot < 1:
        raise MechanismError("resampled draws need n_boot ≥ 1")
    first = baselines[0]
    resamples = two_stage_resamples([len(first.labels)] * len(baselines), n_boot, seed,
                                    shared_images=True,
                                    image_seed=resample_seed(seed, first.samples[0].category))
    db, dc = (_draws(evs, resamples, n_bins) for evs in (baselines, candidates))
    return {key: np.stack([db[key].mean(axis=1), dc[key].mean(axis=1),
                           (dc[key] - db[key]).mean(axis=1)], axis=1) for key in OBSERVED_METRICS}


def observed_effect(baselines: Sequence[Evaluation], candidates: Sequence[Evaluation],
                    baseline_label: str, candidate_label: str, n_boot: int = 1000, seed: int = 0,
                    n_bins: int = DEFAULT_BINS, draws: dict[str, np.ndarray] | None = None
                    ) -> ObservedEffect:
    """Compare seed-paired evaluations of the same test images (same order, same masks).
    ``draws``: their ``effect_draws`` with these ``n_boot``, ``seed`` and ``n_bins``, if the
    caller has them (else they are computed).

    Raises:
        MechanismError: unpaired seeds, evaluations of different images or scoring, or
            ``n_boot`` < 0.
    """
    _check(baselines, candidates, n_boot)
    n_seeds, first = len(baselines), baselines[0]
    points = {role: np.array([[getattr(ev.metrics, k) for k in OBSERVED_METRICS] for ev in evs])
              for role, evs in (("baseline", baselines), ("candidate", candidates))}
    if n_boot and draws is None:
        draws = effect_draws(baselines, candidates, n_boot, seed, n_bins)
    if not n_boot:
        draws = None
    metrics = {}
    for i, key in enumerate(OBSERVED_METRICS):
        b, c = points["baseline"][:, i], points["candidate"][:, i]
        estimates = (float(b.mean()), float(c.mean()), float((c - b).mean()))
        if draws is not None:
            metrics[key] = PairedStat(*(percentile_interval(e, draws[key][:, j])
                                        for j, e in enumerate(estimates)))
        else:
            metrics[key] = PairedStat(*(Interval(e, None, None, 0.95, 0, 0, "no bootstrap requested")
                                        for e in estimates))
    scored = (f"maps of the per-patch {MAP_SCORE_WORDS[first.map_score]}, blur σ = "
              f"{first.sigma:g} px; image score {first.image_score}")
    how = ("two-stage 95% percentile bootstrap over seeds × test images (one image draw shared by "
           "the drawn seeds: one test set)" if n_seeds > 1
           else "95% percentile bootstrap over test images (one seed)")
    method = (f"{how}, B = {n_boot}, the same resamples for both roles; metrics of a resample "
              f"from per-image counts on ≤ {n_bins} equal-count score bins" if n_boot
              else "no bootstrap requested")
    return ObservedEffect(first.samples[0].category, baseline_label, candidate_label, n_seeds,
                          int((first.labels == 0).sum()), int(first.labels.sum()), metrics, seed,
                          n_boot, scored, method)
