"""fig4 — H7 latent calibration: QQ plot of z against N(0, 1) and the quantile errors at the
tail percentiles (the analysed model, and the baseline when the result has one)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.axes import Axes

from mechanism.analyzers.h7_calibration import H7Result, LatentCalibration
from mechanism.figures.style import (BASELINE_COLOR, TAIL_COLOR, THEORY_COLOR, FigureText, Layout,
                                     interval_note)
from mechanism.report.headline import claim_text

LAYOUT = Layout(1, 2, (9.0, 4.2))


def models(result: H7Result) -> list[tuple[str, LatentCalibration, str]]:
    """``(legend label, calibration, colour)`` of the analysed model and, if present, the
    baseline."""
    out = [("analysed model", result.candidate, TAIL_COLOR)]
    if result.baseline is not None:
        lam = "" if result.paired is None else f" (λ = {result.paired.baseline_tail_weight:g})"
        out.insert(0, (f"baseline{lam}", result.baseline, BASELINE_COLOR))
    return out


def _draw_qq(result: H7Result, ax: Axes) -> None:
    theory = np.asarray(result.theoretical_percentiles)
    for label, cal, color in models(result):
        ax.plot(theory, cal.empirical_percentiles, "o", ms=3, color=color,
                label=f"{label}: r = {cal.qq_correlation.estimate:.4f}")
    tails = [q.percentile for q in result.candidate.quantiles]
    at_tails = np.isin(result.percentile_levels, tails)
    ax.plot(theory[at_tails], np.asarray(result.candidate.empirical_percentiles)[at_tails], "o",
            ms=7, mfc="none", mec=THEORY_COLOR, mew=0.8, label="tail percentiles (panel b)")
    ax.plot(theory[[0, -1]], theory[[0, -1]], color=THEORY_COLOR, lw=0.8, ls="--",
            label="identity (z ~ N(0, 1))")
    ax.set_xlabel("N(0, 1) quantile Φ⁻¹(p)")
    ax.set_ylabel("empirical quantile of z")
    ax.set_title("(a) QQ plot, percentiles p = 1 … 99%")
    ax.legend(loc="lower right")


def _draw_tail_errors(result: H7Result, ax: Axes) -> None:
    percentiles = [q.percentile for q in result.candidate.quantiles]
    x = np.arange(len(percentiles))
    drawn = models(result)
    width = 0.8 / len(drawn)
    for i, (label, cal, color) in enumerate(drawn):
        signed = [q.empirical - q.theoretical for q in cal.quantiles]
        ax.bar(x + (i - (len(drawn) - 1) / 2) * width, signed, width, color=color,
               label=f"{label}: {cal.tail_error.format('{:.3f}')}")
    ax.axhline(0, color=THEORY_COLOR, lw=0.8)
    ax.set_xticks(x, [f"{p:g}%" for p in percentiles])
    ax.set_xlabel("percentile p")
    ax.set_ylabel("empirical − N(0, 1) quantile of z")
    ax.set_title("(b) quantile error at the tail percentiles")
    bound = 1.15 * max(abs(q.empirical - q.theoretical) for _, cal, _ in drawn for q in cal.quantiles)
    ax.set_ylim(-bound, bound)
    ax.legend(loc="best", title="mean |error| (tail calibration error)")


def draw(result: H7Result, axes: Sequence[Axes]) -> FigureText:
    """Draw fig4 on ``LAYOUT.panels`` axes: (a) empirical percentiles 1..99 of z against the
    standard-normal quantiles with the identity line, (b) signed quantile errors at the tail
    percentiles (1, 2, 5, 95, 98, 99%)."""
    _draw_qq(result, axes[0])
    _draw_tail_errors(result, axes[1])
    c, cand = result.context, result.candidate
    claims = " ".join(f"{claim_text(c)}." for c in result.evidence.claims)
    caption = (f"All {cand.n_values:,} latent values z (D = {cand.n_channels} channels, "
               f"{c.grid_h}×{c.grid_w} grid) of {c.n_images} {c.split} images of {c.category}; z is "
               f"dimensionless. Tail calibration error = mean |empirical − theoretical| at the six "
               f"tail percentiles. Percentiles and their errors are point estimates over all "
               f"values (no interval; QQ r and the tail error carry theirs). QQ r: "
               + "; ".join(f"{label} {cal.qq_correlation.format('{:.4f}')}"
                           for label, cal, _ in models(result))
               + f". Grade: {result.grade}. {interval_note(_intervals(result))} {claims}")
    return FigureText(f"H7 latent calibration: QQ r = {cand.qq_correlation.estimate:.4f}, tail error "
                      f"{cand.tail_error.estimate:.3f} — {result.evidence.verdict.value}", caption)


def _intervals(result: H7Result) -> list:
    return [iv for _, cal, _ in models(result) for iv in (cal.qq_correlation, cal.tail_error)]
