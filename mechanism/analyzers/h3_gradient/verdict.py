"""H3's verdict rule (SPEC §4 H3)."""
from __future__ import annotations

from mechanism.analyzers.context import Verdict
from mechanism.analyzers.h3_gradient.result import PARTIAL_AMPLIFICATION, SUPPORT_SHARE


def verdict(amplification: float | None, n_patches: int, k: int, unbounded: bool = False,
            note: str = "") -> tuple[Verdict, str]:
    """SPEC §4 H3 verdict with a one-line reason.

    Args:
        amplification: measured ratio(tail-aware) / ratio(mean-only); None when undefined.
        unbounded: ``amplification`` is None because the tail-aware non-tail gradient is exactly
            0 (concentration is total: counts as ≥ any threshold).
        note: why ``amplification`` is None.
    """
    theory = n_patches / k
    need = SUPPORT_SHARE * theory
    bar = f"{SUPPORT_SHARE:g}·N/k = {need:.3g}× (N/k = {n_patches}/{k} = {theory:.3g}×)"
    if amplification is None:
        if unbounded:
            return Verdict.SUPPORTED, f"amplification unbounded ≥ {bar}: {note}"
        return Verdict.NOT_SUPPORTED, f"amplification undefined: {note}"
    text = f"gradient amplification {amplification:.3g}× ({amplification / theory:.0%} of N/k)"
    if amplification >= need:
        return Verdict.SUPPORTED, f"{text} ≥ {bar}"
    if amplification > PARTIAL_AMPLIFICATION:
        return Verdict.PARTIAL, f"{text} > {PARTIAL_AMPLIFICATION:g}× but < {bar}"
    return Verdict.NOT_SUPPORTED, f"{text} ≤ {PARTIAL_AMPLIFICATION:g}× (SUPPORTED needs ≥ {bar})"
