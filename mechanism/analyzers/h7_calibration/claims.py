"""H7's grade (a description) and claims (SPEC §7.3): does tail training calibrate z toward
N(0, 1)? Both claims compare the tail-aware model with the baseline on the same images and are
claims about what training changes (≥ 3 seeds)."""
from __future__ import annotations

from mechanism.analyzers.h7_calibration.result import (QQ_CALIBRATED, QQ_ROUGHLY, TAIL_CALIBRATED,
                                                       SeedDifferences)
from mechanism.stats.evidence import Claim, Evidence

NEEDS_BASELINE = "needs a λ = 0 baseline checkpoint (--baseline-ckpt)"


def grade(qq_correlation: float, tail_error: float, z_std: float) -> str:
    """``"calibrated"`` (QQ r ≥ 0.995 and tail error ≤ 0.10), ``"roughly"`` (QQ r ≥ 0.98) or
    ``"not calibrated"``, with the numbers; z std is printed because QQ r ignores scale."""
    if qq_correlation >= QQ_CALIBRATED and tail_error <= TAIL_CALIBRATED:
        word = "calibrated"
    elif qq_correlation >= QQ_ROUGHLY:
        word = "roughly calibrated"
    else:
        word = "not calibrated"
    return f"{word} (QQ r = {qq_correlation:.4f}, tail error {tail_error:.3f}, z std {z_std:.3f})"


def evidence(training: SeedDifferences | None, n_images: int) -> Evidence:
    """H7.calibration and H7.scale over the seed pairs of ``training`` (None: no baseline)."""
    def claim(name: str, quantity: str, attr: str) -> Claim:
        if training is None:
            return Claim.of(name, quantity, None, "<", 0.0, 0, n_images, about_training=True,
                            note=NEEDS_BASELINE)
        return Claim.of(name, quantity, getattr(training, attr), "<", 0.0, training.n_seeds,
                        training.n_images, about_training=True)

    return Evidence((claim("H7.calibration", "Δ tail calibration error (tail-aware − baseline)",
                           "tail_error"),
                     claim("H7.scale", "Δ |z std − 1| (tail-aware − baseline)", "scale_error")), ())
