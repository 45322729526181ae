"""H1's verdict rule (SPEC §4 H1): a location effect and a gradient effect."""
from __future__ import annotations

from mechanism.analyzers.context import ALPHA, Verdict
from mechanism.analyzers.h1_edge.result import RATIO_THRESHOLD
from mechanism.io.text import format_p


def verdict(ks_p: float, tail_distance_mean: float, uniform_distance_mean: float,
            mw_p: float | None, gradient_ratio: float | None,
            alpha: float = ALPHA) -> tuple[Verdict, str]:
    """SPEC §4 H1 verdict from the headline numbers (see the package docstring), with a
    one-line reason. ``mw_p``/``gradient_ratio`` ``None`` (undefined) mean no gradient effect."""
    near_edges = tail_distance_mean < uniform_distance_mean
    location = ks_p < alpha and near_edges
    gradient = (mw_p is not None and gradient_ratio is not None and mw_p < alpha
                and gradient_ratio >= RATIO_THRESHOLD)
    side = "nearer the edges" if near_edges else "not nearer the edges"
    loc_text = (f"tail {side} ({tail_distance_mean:.3f} vs uniform {uniform_distance_mean:.3f} "
                f"cells, KS p = {format_p(ks_p)})")
    ratio_text = "undefined" if gradient_ratio is None else f"{gradient_ratio:.2f}×"
    mw_text = "undefined" if mw_p is None else format_p(mw_p)
    grad_text = f"gradient ratio {ratio_text} (MW p = {mw_text})"
    holds = {True: "holds", False: "does not hold"}
    reason = (f"location effect {holds[location]}: {loc_text}; "
              f"gradient effect {holds[gradient]}: {grad_text}")
    if location and gradient:
        return Verdict.SUPPORTED, reason
    if location or gradient:
        return Verdict.PARTIAL, reason
    return Verdict.NOT_SUPPORTED, reason
