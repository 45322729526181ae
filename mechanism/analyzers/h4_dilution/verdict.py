"""H4's best ratio and verdict rule (SPEC §4 H4)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from mechanism.analyzers.context import Verdict
from mechanism.analyzers.h4_dilution.result import BASIS_EFFECTIVE, BASIS_PIXEL_AP, DILUTED_RATIO
from mechanism.io.text import percent


def best_ratio(ratios: Sequence[float], effective: Sequence[float],
               pixel_ap: Sequence[float | None] | None) -> tuple[float, str]:
    """The best ratio and its basis: highest measured mean Pixel AP if any ratio was measured,
    else highest effective concentration; ties go to the smaller ratio (ratios ascending)."""
    measured = [] if pixel_ap is None else [i for i, ap in enumerate(pixel_ap) if ap is not None]
    if measured:
        return ratios[max(measured, key=lambda i: pixel_ap[i])], BASIS_PIXEL_AP
    return ratios[int(np.argmax(effective))], BASIS_EFFECTIVE


def verdict(ratios: Sequence[float], effective: Sequence[float],
            pixel_ap: Sequence[float | None] | None) -> tuple[Verdict, str]:
    """The SPEC §4 H4 rule (package docstring) on ascending ``ratios``.

    Args:
        effective: effective concentration per ratio.
        pixel_ap: measured mean Pixel AP per ratio (``None`` entries: not measured), or ``None``
            when no sweep was given.
    """
    if list(ratios) != sorted(set(ratios)) or len(effective) != len(ratios) or \
            (pixel_ap is not None and len(pixel_ap) != len(ratios)):
        raise ValueError("ratios must be distinct and ascending, with one value per ratio")
    best, basis = best_ratio(ratios, effective, pixel_ap)
    b = list(ratios).index(best)

    def at(i: int) -> str:
        return f"{percent(ratios[i])} ({effective[i]:.3g}×)"

    if b == len(ratios) - 1:
        return Verdict.NOT_SUPPORTED, (f"best ratio {percent(best)} (by {basis}) is the largest "
                                       f"analysed: no larger ratio to show dilution")
    for j in range(b + 1, len(ratios)):
        if effective[j] > effective[j - 1]:
            return Verdict.NOT_SUPPORTED, (f"effective concentration rises from {at(j - 1)} to "
                                           f"{at(j)}, above the best ratio {percent(best)} (by {basis})")
    if not effective[-1] < effective[b]:
        return Verdict.NOT_SUPPORTED, (f"effective concentration does not fall above the best ratio "
                                       f"{percent(best)} (by {basis}): {at(b)} and {at(-1)}")
    falls = (f"effective concentration falls monotonically above the best ratio {percent(best)} "
             f"(by {basis}): {effective[b]:.3g}× → {at(-1)}")
    if pixel_ap is None:
        return Verdict.PARTIAL, f"{falls}; no sweep: performance not measured"
    diluted = [i for i, r in enumerate(ratios)
               if math.isclose(r, DILUTED_RATIO) and pixel_ap[i] is not None]
    if not diluted:
        return Verdict.PARTIAL, f"{falls}; Pixel AP at {percent(DILUTED_RATIO)} not measured by the sweep"
    ap_best, ap_diluted = pixel_ap[b], pixel_ap[diluted[0]]
    if best > DILUTED_RATIO or math.isclose(best, DILUTED_RATIO):
        return Verdict.NOT_SUPPORTED, (f"{falls}; but measured Pixel AP peaks at {percent(best)} "
                                       f"({ap_best:.2%}), not below {percent(DILUTED_RATIO)}: "
                                       f"no dilution at {percent(DILUTED_RATIO)} to measure")
    if ap_diluted < ap_best:
        return Verdict.SUPPORTED, (f"{falls}; Pixel AP {ap_diluted:.2%} at {percent(DILUTED_RATIO)} "
                                   f"< {ap_best:.2%} at {percent(best)}")
    return Verdict.NOT_SUPPORTED, (f"{falls}; but Pixel AP at {percent(DILUTED_RATIO)} "
                                   f"({ap_diluted:.2%}) is not lower than at {percent(best)} "
                                   f"({ap_best:.2%})")
