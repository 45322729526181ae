"""H4 — top-k ratio dilution (SPEC §4), measured on a trained checkpoint's training images.

For each top-k ratio r, ``k = max(1, round(N·r))`` with N from the checkpoint:

* amplification (theoretical) = N / k;
* purity = mean over images of |selected k ∩ truly hard| / k, where the selection ranks the NLL
  "the loss would see in training" (the checkpoint on one seeded augmented view per image:
  photometric jitter and pixel noise, flips optional, see ``mechanism.data.augment``; or a
  ``selection`` checkpoint on the clean view) and the truly hard patches are the top
  ``k_ref = max(1, round(N·0.02))`` of the NLL averaged over M views (the clean view and M − 1
  seeded augmented views, mapped back to the original grid), or of a ``reference`` checkpoint's
  clean-view NLL. The augmented views used for selection and for the reference are distinct
  draws (view 0 for the selection, views 1..M−1 for the reference), so their noise is independent;
* oracle purity = min(1, k_ref/k) (perfect selection); chance purity = k_ref/N (random selection);
* effective concentration = purity × amplification;
* with measured sweep metrics (``MeasuredRatios``, summarised from a sweep's runs by the
  caller: the analyzer reads no sweep files): the measured Pixel AP and Image AUROC of the
  checkpoints trained at each ratio, mean ± std over seeds. Every ratio the sweep trained is
  analysed too.

Best ratio: the ratio with the highest measured mean Pixel AP when a sweep is given, else the
ratio with the highest effective concentration (ties: the smaller ratio).
Verdict: SUPPORTED if effective concentration falls monotonically above the best ratio
(non-increasing at every step and strictly lower at the largest ratio than at the best) AND the
measured Pixel AP is lower at 10% than at the best ratio, the best ratio lying below 10% (with a
best ratio of 10% or more, performance is not diluted at 10%). Without a sweep, or without a measured
10% run, the performance half cannot be checked: PARTIAL when the concentration half holds.
NOT SUPPORTED otherwise.

Modules: ``result`` (settings, constants, ``MeasuredRatios``, result records), ``purity`` (NLL
of the selection and the reference, purity per ratio), ``verdict`` (``best_ratio`` and the
rule), ``analysis`` (``run``); the tables are rendered by ``mechanism.report.tables.h4``.
"""
from mechanism.analyzers.h4_dilution.analysis import run
from mechanism.analyzers.h4_dilution.purity import (CPU_BACKBONE_CHUNK, SELECTION_VIEW,
                                                     augmented_nll, ratio_rows,
                                                     selection_and_reference)
from mechanism.analyzers.h4_dilution.result import (BASIS_EFFECTIVE, BASIS_PIXEL_AP, DEFAULT_IMAGES,
                                                    DEFAULT_RATIOS, DILUTED_RATIO, MEASURED_METRICS,
                                                    SWEEP_PARAM, H4Config, H4Result, MeasuredRatios,
                                                    RatioRow)
from mechanism.analyzers.h4_dilution.verdict import best_ratio, verdict

__all__ = ["BASIS_EFFECTIVE", "BASIS_PIXEL_AP", "CPU_BACKBONE_CHUNK", "DEFAULT_IMAGES",
           "DEFAULT_RATIOS", "DILUTED_RATIO", "H4Config", "H4Result", "MeasuredRatios",
           "MEASURED_METRICS", "RatioRow", "SELECTION_VIEW", "SWEEP_PARAM", "augmented_nll",
           "best_ratio", "ratio_rows", "run", "selection_and_reference", "verdict"]
