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

Best ratio (a description, never evidence: it is picked on the test set): the ratio with the
highest measured mean Pixel AP when a sweep is given, else the highest effective concentration.
Claims (``claims``, SPEC §7.3): H4.selection (purity > chance at r = 2%), H4.performance(10%)
and H4.performance(100%) (Pixel AP at r = 2% above r = 10% / 100%, paired over seeds × images,
r fixed in advance); purity where oracle = chance is an identity check.

Modules: ``result`` (settings, constants, ``MeasuredRatios``, result records), ``purity`` (NLL
of the selection and the reference, purity per ratio), ``claims`` (``best_ratio``, the
identities and claims), ``analysis`` (``run``); the tables are rendered by ``mechanism.report.tables.h4``.
"""
from mechanism.analyzers.h4_dilution.analysis import run
from mechanism.analyzers.h4_dilution.purity import (SELECTION_VIEW,
                                                     augmented_nll, ratio_rows,
                                                     selection_and_reference)
from mechanism.analyzers.h4_dilution.claims import best_ratio, evidence
from mechanism.analyzers.h4_dilution.result import (BASIS_EFFECTIVE, BASIS_PIXEL_AP,
                                                     CONTRAST_RATIOS, DEFAULT_IMAGES,
                                                     DEFAULT_RATIOS, MEASURED_METRICS, STUDY_RATIO,
                                                     SWEEP_PARAM, H4Config, H4Result,
                                                     MeasuredRatios, PerformanceContrast, RatioRow)

__all__ = ["BASIS_EFFECTIVE", "BASIS_PIXEL_AP", "CONTRAST_RATIOS", "DEFAULT_IMAGES",
           "DEFAULT_RATIOS", "H4Config", "H4Result", "MEASURED_METRICS", "MeasuredRatios",
           "PerformanceContrast", "RatioRow", "SELECTION_VIEW", "STUDY_RATIO", "SWEEP_PARAM",
           "augmented_nll", "best_ratio", "evidence", "ratio_rows", "run",
           "selection_and_reference"]
