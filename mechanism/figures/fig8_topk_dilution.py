"""fig8 — H4 top-k ratio dilution against r: amplification N/k and effective concentration,
selection purity, and, when the H4 result carries a sweep's measurements, Pixel AP and Image
AUROC of the checkpoints trained at each ratio."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import NullLocator, PercentFormatter

from mechanism.analyzers.h4_dilution import MEASURED_METRICS, H4Result
from mechanism.eval.metrics.detection import METRIC_LABELS
from mechanism.figures.style import (BASELINE_COLOR, NONTAIL_COLOR, TAIL_COLOR, THEORY_COLOR,
                                     FigureText, Layout, interval_errors, interval_note,
                                     seeds_label, mark_zoomed, images_text)
from mechanism.io.text import percent
from mechanism.report.headline import claim_text
from mechanism.report.tables.h4 import saturated_purity


def measured(result: H4Result) -> bool:
    """Whether the result carries a sweep's measured Pixel AP for at least one ratio."""
    return any(row.pixel_ap is not None for row in result.rows)


def layout(result: H4Result) -> Layout:
    """Two panels, or four (2 × 2) with measured columns."""
    return Layout(2, 2, (9.0, 7.4)) if measured(result) else Layout(1, 2, (9.0, 4.2))


def _ratio_axis(ax: Axes, result: H4Result) -> None:
    ratios = [row.ratio for row in result.rows]
    ax.set_xscale("log")
    ax.set_xticks(ratios, [percent(r) for r in ratios], fontsize=7)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("top-k ratio r = k / N (log scale)")
    ax.axvline(result.best_ratio, color=BASELINE_COLOR, lw=1, ls="-.",
               label=f"best ratio {percent(result.best_ratio)} (a description)")


def _draw_concentration(result: H4Result, ax: Axes) -> None:
    r = np.array([row.ratio for row in result.rows])
    ax.plot(r, [row.amplification for row in result.rows], "s--", color=THEORY_COLOR, ms=4, lw=1,
            label="amplification N/k (theory)")
    eff = [row.effective_concentration for row in result.rows]
    ax.plot(r, [iv.estimate for iv in eff], "o-", color=TAIL_COLOR, ms=4,
            label="effective concentration = purity × N/k")
    with_ci = [i for i, iv in enumerate(eff) if iv.low is not None]
    if with_ci:
        ax.fill_between(r[with_ci], [eff[i].low for i in with_ci], [eff[i].high for i in with_ci],
                        color=TAIL_COLOR, alpha=0.2, lw=0, label="95% CI")
    ax.set_yscale("log")
    _ratio_axis(ax, result)
    ax.set_ylabel("gradient concentration (×, log scale)")
    ax.set_title("(a) amplification and effective concentration")
    ax.legend(loc="lower left")


def _draw_purity(result: H4Result, ax: Axes) -> None:
    r = [row.ratio for row in result.rows]
    purity = [row.purity for row in result.rows]
    err, present = interval_errors(purity)
    ax.errorbar(r, [iv.estimate for iv in purity], yerr=err if present else None, fmt="o-",
                color=NONTAIL_COLOR, ms=4, capsize=3, label="purity of the selected k")
    ax.plot(r, [row.oracle_purity for row in result.rows], "s--", color=THEORY_COLOR, ms=4, lw=1,
            label="oracle purity min(1, k_ref/k)")
    ax.axhline(result.chance_purity, color=THEORY_COLOR, ls=":", lw=1,
               label=f"chance purity k_ref/N = {result.chance_purity:.1%}")
    forced = [row for row in result.rows if row.purity_forced]
    saturated = [row for row in result.rows if saturated_purity(row)]
    for rows, marker, label in ((forced, "X", "forced: oracle = chance (k = N)"),
                                (saturated, "D", "saturated: purity = oracle")):
        if rows:
            ax.plot([row.ratio for row in rows], [row.purity.estimate for row in rows], marker,
                    ms=9, mfc="none", mec=THEORY_COLOR, mew=1.2, ls="none", label=label)
    _ratio_axis(ax, result)
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("selected patches that are truly hard")
    ax.set_title("(b) selection purity")
    ax.legend(loc="upper right")


def _draw_measured(result: H4Result, ax: Axes, metric: str, name: str, letter: str) -> None:
    rows = [row for row in result.rows if getattr(row, metric) is not None]
    summaries = [getattr(row, metric) for row in rows]
    ax.errorbar([row.ratio for row in rows], [100 * s.mean for s in summaries],
                yerr=[100 * (s.std or 0.0) for s in summaries], fmt="o-", color=TAIL_COLOR, ms=4,
                capsize=3, label=seeds_label([s.n for s in summaries]))
    _ratio_axis(ax, result)
    ax.set_ylabel(f"{name} (%)")
    ax.set_title(f"({letter}) measured {name}")
    ax.legend(loc="best")


def draw(result: H4Result, axes: Sequence[Axes]) -> FigureText:
    """Draw fig8 on ``layout(result).panels`` axes: (a) amplification N/k and effective
    concentration, (b) purity with oracle and chance purity, and with measured columns
    (c) Pixel AP and (d) Image AUROC, mean ± std over seeds, all against r."""
    _draw_concentration(result, axes[0])
    _draw_purity(result, axes[1])
    c = result.context
    if measured(result):
        for ax, metric, letter in zip(axes[2:], MEASURED_METRICS, "cd"):
            name = METRIC_LABELS[metric]
            _draw_measured(result, ax, metric, name, letter)
        seeds = sorted({row.pixel_ap.n for row in result.rows if row.pixel_ap is not None})
        unmeasured = [percent(row.ratio) for row in result.rows if row.pixel_ap is None]
        perf = (f"Measured: checkpoints trained at each ratio by the sweep {result.sweep}, test "
                f"split, seeds per ratio {', '.join(map(str, seeds))} (std: ddof = 1)"
                + (f"; not trained at {', '.join(unmeasured)}" if unmeasured else "")
                + f". {mark_zoomed(dict(zip(('(c)', '(d)'), axes[2:])))} The best ratio is chosen on "
                  "the test set: a description, never evidence.")
    else:
        perf = ("No measured Pixel AP: the H4 analysis ran without a top-k ratio sweep "
                "(mechanism analyze --sweep).")
    intervals = [iv for row in result.rows for iv in (row.purity, row.effective_concentration)]
    caption = (f"N = {c.n_patches} patches ({c.grid_h}×{c.grid_w} grid), k = max(1, round(N·r)); "
               f"truly hard: k_ref = {result.k_ref} per image from {result.reference_source}; "
               f"selection: {result.selection_source}. {images_text(c)}. {interval_note(intervals, c.n_seeds)} {perf}")
    claims = " ".join(f"{claim_text(x)}." for x in result.evidence.claims)
    return FigureText(f"H4 top-k ratio dilution — {result.evidence.verdict.value}",
                      f"{caption} {claims}")
