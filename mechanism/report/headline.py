"""One line of key evidence per hypothesis result, for the report's summary table and fig7."""
from __future__ import annotations

import math

from mechanism.analyzers.h1_edge import H1Result
from mechanism.analyzers.h3_gradient import H3Result
from mechanism.analyzers.h4_dilution import DILUTED_RATIO, H4Result
from mechanism.analyzers.h7_calibration import H7Result
from mechanism.io.text import answer, format_p, percent


def _h1(r: H1Result) -> str:
    ratio = "undefined" if r.gradient_ratio is None else r.gradient_ratio.format("{:.3f}×")
    mw = "undefined" if r.mw_p is None else format_p(r.mw_p)
    return (f"tail edge distance {r.tail_distance_mean.estimate:.3f} vs uniform "
            f"{r.uniform_distance_mean:.3f} cells, KS p = {format_p(r.ks_p)}; image gradient "
            f"ratio {ratio}, Mann-Whitney p = {mw}")


def _h3(r: H3Result) -> str:
    theory = f"N/k = {r.theoretical_amplification:.3g}×"
    if r.amplification is None:
        return f"amplification undefined ({r.amplification_note}); {theory}"
    return (f"gradient amplification {r.amplification.format('{:.3g}×')} = "
            f"{r.amplification_share:.0%} of {theory}")


def _h4(r: H4Result) -> str:
    rows = {row.ratio: row for row in r.rows}
    best = rows[r.best_ratio]
    text = (f"best ratio {percent(r.best_ratio)} (by {r.best_basis}): effective concentration "
            f"{best.effective_concentration.estimate:.3g}× vs "
            f"{rows[max(rows)].effective_concentration.estimate:.3g}× at {percent(max(rows))}")
    diluted = next((row for row in r.rows if math.isclose(row.ratio, DILUTED_RATIO)), None)
    if best.pixel_ap is not None and diluted is not None and diluted is not best \
            and diluted.pixel_ap is not None:
        text += (f"; Pixel AP {best.pixel_ap.mean:.2%} at {percent(r.best_ratio)} vs "
                 f"{diluted.pixel_ap.mean:.2%} at {percent(DILUTED_RATIO)}")
    return text


def _h7(r: H7Result) -> str:
    c = r.candidate
    text = f"QQ r = {c.qq_correlation.format('{:.4f}')}, tail error {c.tail_error.format('{:.3f}')}"
    if r.paired is not None:
        text += f"; closer to N(0, 1) than the baseline: {answer(r.paired.closer)}"
    return text


_HEADLINES = {H1Result: _h1, H3Result: _h3, H4Result: _h4, H7Result: _h7}


def headline(result: H1Result | H3Result | H4Result | H7Result) -> str:
    """The key evidence behind ``result``'s verdict, one line."""
    return _HEADLINES[type(result)](result)
