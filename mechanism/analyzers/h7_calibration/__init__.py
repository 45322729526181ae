"""H7 — latent calibration (SPEC §4 H7, claims of §7.3): does tail training bring the flow's latent
z closer to N(0, 1) on normal test images?

Every value of ``z = flow(features).z`` ``(n, D, H, W)`` of the analysed test images (``good``
ones by default; all with ``split="all"``) is pooled:

* z mean and population std; QQ correlation (Pearson r of the percentiles 1..99 against
  ``norm.ppf``); tail calibration error (mean |empirical − theoretical| at the percentiles
  1, 2, 5, 95, 98, 99); the quantile table (``mechanism.stats.calibration``);
* per channel: KS test against N(0, 1) on all values, Shapiro-Wilk on one seeded subsample of
  ≤ ``max_shapiro`` patch positions (mean p-values and the share of channels with p < α).

Point estimates are exact (computed on the raw values). Their 95% intervals are percentile
bootstraps over images; a resample's percentiles come from per-image histograms on shared
equal-count bins (``PooledHistograms``; ``tests/test_stats_calibration.py`` bounds the error
against exact percentiles of the resampled values), its moments from per-image sums.
KS and Shapiro p-values treat the patch values as independent; neighbouring patches are
correlated, so they overstate the evidence against normality.

Grade (``claims.grade``, descriptive, printed beside the verdict): "calibrated" if QQ r ≥ 0.995
and tail error ≤ 0.10, "roughly calibrated" if QQ r ≥ 0.98, else "not calibrated"; z std is
printed beside it because QQ r ignores scale.

Claims (``claims.evidence``, SPEC §7.3), with a baseline (λ = 0) checkpoint measured on the same
images and paired (same resamples): **H7.calibration** — Δ tail calibration error (tail-aware −
baseline) < 0; **H7.scale** — Δ |z std − 1| < 0. Both are claims about what training changes:
they need ≥ 3 training seeds.

Modules: ``result`` (settings, thresholds, result records), ``latents`` (one model's z with its
exact and resampled statistics), ``claims`` (the grade and the claims),
``analysis`` (the analysed images, shared intervals and ``run``); the tables are rendered by
``mechanism.report.tables.h7``.
"""
from mechanism.analyzers.h7_calibration.latents import latents
from mechanism.analyzers.h7_calibration.analysis import analysed_samples, run, seed_differences
from mechanism.analyzers.h7_calibration.claims import evidence, grade
from mechanism.analyzers.h7_calibration.result import (CALIBRATION_STATS, PAIRED_STATS,
                                                       QQ_CALIBRATED, QQ_ROUGHLY, SPLITS,
                                                       TAIL_CALIBRATED, H7Config, H7Paired,
                                                       H7Result, LatentCalibration, SeedDifferences)

__all__ = ["CALIBRATION_STATS", "PAIRED_STATS", "QQ_CALIBRATED", "QQ_ROUGHLY", "SPLITS",
           "TAIL_CALIBRATED", "H7Config", "H7Paired", "H7Result", "LatentCalibration", "SeedDifferences",
           "analysed_samples", "evidence", "grade", "latents", "run", "seed_differences"]
