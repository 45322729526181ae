"""H7's computation: the analysed test images, the bootstrap intervals over images shared by
candidate and baseline, and ``run``."""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from mechanism.analyzers.context import AnalysisContext, checkpoint_label, paired_stat
from mechanism.analyzers.h7_calibration.latents import ModelLatents, latents
from mechanism.analyzers.h7_calibration.result import (CALIBRATION_STATS, PAIRED_STATS, SPLITS,
                                                       H7Config, H7Paired, H7Result,
                                                       SeedDifferences)
from mechanism.analyzers.h7_calibration.claims import evidence, grade
from mechanism.data.mvtec import Sample, read_split
from mechanism.errors import MechanismError
from mechanism.eval.detector import Detector
from mechanism.stats.bootstrap import Interval, bootstrap, seed_mean, two_stage_bootstrap
from mechanism.stats.calibration import KS_METHOD, QQ_PERCENTILES, SHAPIRO_METHOD, normal_quantiles
from mechanism.train.loss import tail_k


def analysed_samples(data_root: str | Path, category: str, cfg: H7Config) -> list[Sample]:
    """The analysed test images: all or ``good`` ones, then (``max_images``) a seeded subset
    ``default_rng(seed).choice`` kept in the reader's (defect, name) order."""
    samples = read_split(data_root, category, "test")
    if cfg.split == "good":
        samples = [s for s in samples if s.defect == "good"]
        if not samples:
            raise MechanismError(f"category {category!r} has no test/good images")
    if cfg.max_images is not None and cfg.max_images < len(samples):
        keep = np.random.default_rng(cfg.seed).choice(len(samples), cfg.max_images, replace=False)
        samples = [samples[i] for i in np.sort(keep)]
    return samples


def _intervals(cand: ModelLatents, base: ModelLatents | None, cfg: H7Config) -> dict[str, Interval]:
    """Intervals over shared image resamples of every statistic (the candidate's keyed by
    CALIBRATION_STATS, then ``baseline_*`` and ``difference_*``); the estimates are replaced by
    the exact values on all z."""
    exact = dict(cand.exact)
    if base is not None:
        exact.update({f"baseline_{k}": v for k, v in base.exact.items()})
        exact.update({f"difference_{k}": cand.exact[k] - base.exact[k] for k in PAIRED_STATS})
    if cfg.n_boot == 0:                       # estimates only: no histograms needed
        return bootstrap({name: lambda idx, v=v: v for name, v in exact.items()}, len(cand.z), 0,
                         cfg.seed)
    statistics = cand.statistics(cfg.resample_bins)
    if base is not None:
        base_stats = base.statistics(cfg.resample_bins)
        statistics.update({f"baseline_{k}": fn for k, fn in base_stats.items()})
        for k in PAIRED_STATS:
            statistics[f"difference_{k}"] = \
                lambda idx, c=statistics[k], b=base_stats[k]: c(idx) - b(idx)
    intervals = bootstrap(statistics, len(cand.z), cfg.n_boot, cfg.seed)
    return {name: replace(interval, estimate=exact[name]) for name, interval in intervals.items()}


CLAIM_STATS = ("tail_error", "scale_error")     # SeedDifferences fields


def seed_differences(pairs: list[tuple[ModelLatents, ModelLatents]], cfg: H7Config) -> SeedDifferences:
    """Candidate − baseline of ``CLAIM_STATS`` over the (candidate, baseline) latents of each
    seed on the same images, two-stage bootstrap over seeds × images (images crossed with seeds);
    estimates exact."""
    n = len(pairs[0][0].z)
    exact = {k: float(np.mean([c.exact[k] - b.exact[k] for c, b in pairs])) for k in CLAIM_STATS}
    if cfg.n_boot == 0:
        out = {k: Interval(v, None, None, 0.95, 0, 0, "no bootstrap requested") for k, v in exact.items()}
    else:
        per_seed = [(c.statistics(cfg.resample_bins), b.statistics(cfg.resample_bins)) for c, b in pairs]
        stats = {k: seed_mean([lambda idx, c=c[k], b=b[k]: c(idx) - b(idx) for c, b in per_seed])
                 for k in CLAIM_STATS}
        out = {k: replace(iv, estimate=exact[k]) for k, iv in
               two_stage_bootstrap(stats, [n] * len(pairs), cfg.n_boot, cfg.seed,
                                   shared_images=True).items()}
    return SeedDifferences(len(pairs), n, out["tail_error"], out["scale_error"])


def _latents(det: Detector, samples: list[Sample], cfg: H7Config, cache_dir: Path | None,
             progress: bool) -> ModelLatents:
    return ModelLatents.from_z(latents(det, det.features(samples, cache_dir, progress),
                                       cfg.batch_size, progress))


def run(detector: Detector, data_root: str | Path, category: str, cfg: H7Config = H7Config(),
        baseline: Detector | None = None, replicates: tuple[tuple[Detector, Detector], ...] = (),
        cache_dir: Path | None = None, progress: bool = True) -> H7Result:
    """Run H7 on the test images of ``category``.

    Args:
        detector: the analysed checkpoint.
        baseline: a λ = 0 checkpoint; adds its calibration on the same images and the paired
            differences (its features are recomputed only if its backbone differs).
        replicates: (candidate, baseline) checkpoints of further training seeds; with the
            analysed pair they give the claims' seeds × images intervals.
        cache_dir: feature cache folder, or ``None`` for no cache.

    Raises:
        MechanismError: for missing data, a split without images, non-finite z, or z whose
            percentiles are all equal.
    """
    ckpt = detector.ckpt
    h, w, _ = ckpt.grid
    samples = analysed_samples(data_root, category, cfg)
    if len(samples) * h * w < 3:
        raise MechanismError(f"Shapiro-Wilk needs ≥ 3 values a channel: {len(samples)} images of "
                             f"{h}×{w} patches give {len(samples) * h * w}")
    features = detector.features(samples, cache_dir, progress)
    cand = ModelLatents.from_z(latents(detector, features, cfg.batch_size, progress))
    base = None
    if baseline is not None:
        if baseline.ckpt.backbone != ckpt.backbone:
            features = baseline.features(samples, cache_dir, progress)
        base = ModelLatents.from_z(latents(baseline, features, cfg.batch_size, progress))
    del features

    intervals = _intervals(cand, base, cfg)
    paired, training = None, None
    if base is not None:
        paired = H7Paired(checkpoint_label(baseline.ckpt), baseline.ckpt.loss.tail_weight,
                          *(paired_stat(intervals, k) for k in PAIRED_STATS))
        pairs = [(cand, base)] + [(_latents(c, samples, cfg, cache_dir, progress),
                                   _latents(b, samples, cfg, cache_dir, progress))
                                  for c, b in replicates]
        training = seed_differences(pairs, cfg)
    method = (f"KS: {KS_METHOD}. Shapiro-Wilk: {SHAPIRO_METHOD} (seed {cfg.seed}). Point "
              f"estimates exact on all z; bootstrap percentiles from per-image histograms on "
              f"{cfg.resample_bins} equal-count bins (CDF linear within a bin), moments from "
              f"per-image sums. KS/Shapiro p-values treat correlated patch values as independent.")
    return H7Result(
        context=AnalysisContext(checkpoint_label(ckpt), category, SPLITS[cfg.split], len(samples),
                                h, w, h * w, tail_k(h * w, ckpt.loss.top_k_ratio),
                                float(ckpt.loss.top_k_ratio), cfg.seed, cfg.n_boot),
        config=asdict(cfg), percentile_levels=tuple(int(p) for p in QQ_PERCENTILES),
        theoretical_percentiles=tuple(float(t) for t in normal_quantiles(QQ_PERCENTILES)),
        candidate=cand.calibration({k: intervals[k] for k in CALIBRATION_STATS}, cfg),
        baseline=None if base is None else base.calibration(
            {k: intervals[f"baseline_{k}"] for k in CALIBRATION_STATS}, cfg),
        paired=paired, training=training, method=method,
        grade=grade(cand.exact["qq_correlation"], cand.exact["tail_error"], cand.exact["z_std"]),
        evidence=evidence(training, len(samples)))
