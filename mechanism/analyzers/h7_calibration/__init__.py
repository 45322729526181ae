"""H7 — latent calibration (SPEC §4 H7): is the flow's latent z standard normal on test images?

Every value of ``z = flow(features).z`` ``(n, D, H, W)`` of the analysed test images (all, or
``good`` only) is pooled:

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

Verdict (``verdict``): SUPPORTED if QQ r ≥ 0.995 and tail error ≤ 0.10; PARTIAL if QQ r ≥ 0.98;
else NOT SUPPORTED. With a baseline (λ = 0) checkpoint the same numbers are computed for it on
the same images and paired (same resamples); tail training moves z closer to N(0, 1) only if
the 95% interval of the tail-error difference (candidate − baseline) lies entirely below 0
(``tail_training_closer``).

Modules: ``result`` (settings, thresholds, result records), ``latents`` (one model's z with its
exact and resampled statistics), ``verdict`` (the rule and ``tail_training_closer``),
``analysis`` (the analysed images, shared intervals and ``run``); the tables are rendered by
``mechanism.report.tables.h7``.
"""
from mechanism.analyzers.h7_calibration.latents import latents
from mechanism.analyzers.h7_calibration.analysis import analysed_samples, run
from mechanism.analyzers.h7_calibration.result import (CALIBRATION_STATS, CLOSER_RULE, PAIRED_STATS,
                                                       QQ_PARTIAL, QQ_SUPPORTED, SPLITS,
                                                       TAIL_SUPPORTED, H7Config, H7Paired, H7Result,
                                                       LatentCalibration)
from mechanism.analyzers.h7_calibration.verdict import tail_training_closer, verdict

__all__ = ["CALIBRATION_STATS", "CLOSER_RULE", "PAIRED_STATS", "QQ_PARTIAL", "QQ_SUPPORTED",
           "SPLITS", "TAIL_SUPPORTED", "H7Config", "H7Paired", "H7Result", "LatentCalibration",
           "analysed_samples", "latents", "run", "tail_training_closer", "verdict"]
