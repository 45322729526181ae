"""H4's best ratio (a description), identity checks and claims (SPEC §7.3).

* The best ratio — the highest measured mean Pixel AP of a sweep, else the highest effective
  concentration (ties: the smaller ratio) — is chosen on the test set it would be judged on, so
  it describes the sweep and is never evidence.
* Identities: where the oracle purity equals chance (k = N) the purity is fixed by the
  definition; and r = 100% is the mean loss, so its checkpoints must match the λ = 0 ones of
  the same seeds (SPEC §7.5: "train it anyway as a check") — to ``MEAN_LOSS_TOLERANCE``, since
  training does not repeat the two formulas' rounding. Printed as checks.
* **H4.selection** — at the study's r = 2%, purity > chance k_ref/N: the selection finds truly
  hard patches at all (purity / oracle, its precision, in the note).
* **H4.performance(10%)** and **H4.performance(100%)** — Pixel AP(r = 2%) − Pixel AP(r = 10% or
  100%) > 0, paired over seeds × images; r fixed in advance. Claims about what training
  changes: ≥ 3 seeds.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from mechanism.analyzers.h4_dilution.result import (BASIS_EFFECTIVE, BASIS_PIXEL_AP,
                                                     CONTRAST_RATIOS, STUDY_RATIO,
                                                     PerformanceContrast, RatioRow)
from mechanism.io.text import percent
from mechanism.stats.evidence import Claim, Evidence, Identity


MEAN_LOSS_TOLERANCE = 1e-4    # Pixel AP (0.01 points): the r = 100% and λ = 0 losses are equal
MEAN_LOSS_NOTE = ("tolerance 0.01 points of Pixel AP: the two loss formulas sum in another order, "
                  "and training carries that rounding")   # not an exact identity of the arithmetic


def best_ratio(ratios: Sequence[float], effective: Sequence[float],
               pixel_ap: Sequence[float | None] | None) -> tuple[float, str]:
    """The best ratio and its basis: highest measured mean Pixel AP if any ratio was measured,
    else highest effective concentration; ties go to the smaller ratio (ratios ascending)."""
    measured = [] if pixel_ap is None else [i for i, ap in enumerate(pixel_ap) if ap is not None]
    if measured:
        return ratios[max(measured, key=lambda i: pixel_ap[i])], BASIS_PIXEL_AP
    return ratios[int(np.argmax(effective))], BASIS_EFFECTIVE


def evidence(rows: Sequence[RatioRow], chance: float, performance: Sequence[PerformanceContrast],
             n_images: int, sweep: str | None, mean_loss_check: float | None = None,
             n_seeds: int = 1) -> Evidence:
    """H4's claims and identity checks from the ratio rows, the performance contrasts and the
    measured Pixel AP(r = 100%) − Pixel AP(λ = 0) (None: not measured)."""
    ids = tuple(Identity(f"H4.purity(r={percent(row.ratio)})",
                         "purity where oracle = chance (k = N): k_ref/N", chance,
                         row.purity.estimate) for row in rows if row.purity_forced)
    if sweep is not None:
        ids += (Identity("H4.r100_is_mean_loss", "Pixel AP(r = 100%) − Pixel AP(λ = 0) of the "
                         "same seed, the seed where they differ most: r = 100% is the mean loss",
                         0.0, mean_loss_check,
                         MEAN_LOSS_NOTE if mean_loss_check is not None else "no r = 100% or λ = 0 runs",
                         MEAN_LOSS_TOLERANCE),)
    study = next((row for row in rows if math.isclose(row.ratio, STUDY_RATIO)), None)
    selection = Claim.of(
        "H4.selection", f"purity at r = {percent(STUDY_RATIO)}", None if study is None else study.purity,
        ">", chance, n_seeds, n_images,
        note=f"r = {percent(STUDY_RATIO)} not analysed" if study is None else
        f"chance k_ref/N = {chance:.4g}; precision purity/oracle = "
        f"{study.purity.estimate / study.oracle_purity:.3f}")
    claims = [selection]
    for ratio in CONTRAST_RATIOS:
        name = f"H4.performance({percent(ratio)})"
        quantity = f"Δ Pixel AP (r = {percent(STUDY_RATIO)} − r = {percent(ratio)})"
        contrast = next((c for c in performance if math.isclose(c.ratio, ratio)), None)
        if contrast is None or contrast.effect is None:
            note = contrast.note if contrast is not None else \
                "no sweep given (--sweep)" if sweep is None else "not measured"
            claims.append(Claim.of(name, quantity, None, ">", 0.0, 0, 0, about_training=True,
                                   note=note))
            continue
        e = contrast.effect
        claims.append(Claim.of(name, quantity, e.metrics["pixel_ap"].difference, ">", 0.0,
                               e.n_seeds, e.n_good + e.n_defective, about_training=True))
    return Evidence(tuple(claims), ids)
