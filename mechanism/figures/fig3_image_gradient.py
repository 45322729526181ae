"""fig3 — H1 image content: Sobel gradient of tail vs non-tail patches (densities, quantiles,
and the ratio of their means with its interval, all cells and interior cells)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.axes import Axes

from mechanism.analyzers.h1_edge import RATIO_THRESHOLD, H1Result
from mechanism.figures.style import (NONTAIL_COLOR, TAIL_COLOR, THEORY_COLOR, FigureText, Layout,
                                     interval_errors, interval_note, mark_zoomed, p_text, images_text)
from mechanism.io.text import percent

LAYOUT = Layout(1, 3, (11.0, 4.0), width_ratios=(1.15, 1.0, 0.85))
GRADIENT_LABEL = "patch mean Sobel magnitude (grey levels in [0, 1])"
LABELLED_LEVELS = (0.05, 0.5, 0.95)     # quantile levels named in panel (b)
HEADROOM = 1.8                          # panel (a) y range ÷ highest density: room for the legend


def _densities(counts: Sequence[int], edges: np.ndarray) -> np.ndarray:
    """Histogram counts → density per gradient unit (integrates to 1)."""
    counts = np.asarray(counts, dtype=float)
    return counts / (counts.sum() * np.diff(edges))


def _draw_densities(result: H1Result, ax: Axes) -> None:
    dist = result.gradient_distribution
    edges = np.asarray(dist.bin_edges)
    for name, counts, mean, color in (
            ("non-tail", dist.nontail_counts, result.gradient_nontail_mean, NONTAIL_COLOR),
            ("tail", dist.tail_counts, result.gradient_tail_mean, TAIL_COLOR)):
        density = _densities(counts, edges)
        ax.stairs(density, edges, fill=True, alpha=0.3, color=color)
        ax.stairs(density, edges, color=color, lw=1.2,
                  label=f"{name} (n = {sum(counts):,} patches)")
        ax.axvline(mean, color=color, ls="--", lw=1, ymax=1 / HEADROOM, label=f"{name} mean {mean:.4f}")
    if result.gradient_ratio is not None:
        ax.plot([], [], " ", label=f"tail mean {100 * (result.gradient_ratio.estimate - 1):+.1f}% "
                                   f"vs non-tail: see (c)")
    ax.set_xlabel(GRADIENT_LABEL)
    ax.set_ylabel("density (per unit of gradient)")
    ax.set_title("(a) distribution")
    ax.set_ylim(0, ax.get_ylim()[1] * HEADROOM)
    ax.legend(loc="upper right")


def _draw_quantiles(result: H1Result, ax: Axes) -> None:
    dist = result.gradient_distribution
    x, y = np.asarray(dist.nontail_quantiles), np.asarray(dist.tail_quantiles)
    ax.plot(x, y, "o-", color=TAIL_COLOR, ms=4, lw=1, label="tail vs non-tail quantile")
    for level, xi, yi in zip(dist.quantile_levels, x, y):
        if any(np.isclose(level, LABELLED_LEVELS)):
            ax.annotate(percent(level), (xi, yi), xytext=(4, -10), textcoords="offset points",
                        fontsize=7)
    low, high = min(x.min(), y.min()), max(x.max(), y.max())
    ax.plot([low, high], [low, high], color=THEORY_COLOR, lw=0.8, ls="--", label="identity (same law)")
    pad = 0.04 * (high - low)
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel("non-tail quantile (Sobel magnitude)")
    ax.set_ylabel("tail quantile (Sobel magnitude)")
    levels = ", ".join(f"{100 * q:g}" for q in dist.quantile_levels)
    ax.set_title(f"(b) quantiles at levels {levels}%", fontsize="medium")
    ax.legend(loc="upper left")


def _draw_ratios(result: H1Result, ax: Axes) -> None:
    """The tail / non-tail ratio of mean gradients with its interval, all cells and interior
    cells (H1.content's quantity), against 1 (equal means) and the claim's threshold."""
    rows = [("all cells", result.gradient_ratio, result.mw_p),
            ("interior, d ≥ 1\n(H1.content)", result.interior_gradient_ratio, result.interior_mw_p)]
    drawn = [(f"{label}\nMann-Whitney\n{'p undefined' if p is None else p_text(p)}", ratio)
             for label, ratio, p in rows if ratio is not None]
    y = np.arange(len(drawn))[::-1]
    ratios = [ratio for _, ratio in drawn]
    err, present = interval_errors(ratios)
    ax.errorbar([r.estimate for r in ratios], y, xerr=err if present else None, fmt="o",
                color=TAIL_COLOR, ms=6, capsize=4, label="ratio of means, 95% CI")
    for yi, ratio in zip(y, ratios):
        ax.annotate(ratio.format("{:.3f}"), (ratio.estimate, yi), xytext=(-6, 8),
                    textcoords="offset points", ha="left", fontsize=7)
    ax.axvline(1.0, color=NONTAIL_COLOR, lw=1, ls="--", label="1: equal means")
    ax.axvline(RATIO_THRESHOLD, color=THEORY_COLOR, lw=1, ls=":",
               label=f"H1.content threshold {RATIO_THRESHOLD:g}")
    ax.margins(x=0.12)
    ax.set_yticks(y, [label for label, _ in drawn], fontsize=7)
    ax.set_ylim(-0.7, len(drawn) - 0.3 + 0.9)       # room for the legend above the rows
    ax.set_xlabel("tail / non-tail ratio")
    ax.set_title("(c) ratio of the means")
    ax.legend(loc="upper center", fontsize=7)


def draw(result: H1Result, axes: Sequence[Axes]) -> FigureText:
    """Draw fig3 on ``LAYOUT.panels`` axes: (a) densities of the patch gradient of tail and
    non-tail patches (shared bins) with their means, (b) tail quantiles against non-tail
    quantiles (identity = same distribution), (c) the ratio of the means with its interval on
    all cells and on interior cells."""
    _draw_densities(result, axes[0])
    _draw_quantiles(result, axes[1])
    _draw_ratios(result, axes[2])
    c = result.context
    ratio = "undefined" if result.gradient_ratio is None else result.gradient_ratio.format("{:.3f}")
    mw = "Mann-Whitney undefined" if result.mw_p is None else f"Mann-Whitney {p_text(result.mw_p)}"
    caption = (f"Gradient: {result.gradient_method}. Tail = the top-k patches per image by the "
               f"checkpoint's NLL, k = {c.k} of N = {c.n_patches} ({c.grid_h}×{c.grid_w} grid, "
               f"r = {c.top_k_ratio:g}); {images_text(c, ' (patches pooled)')}. "
               f"(a) and (b) describe all patches (quantiles are point estimates, no interval); "
               f"(c) the ratio of the two means, on all cells and on interior cells (edge distance "
               f"≥ 1, the claim H1.content). {mark_zoomed({'(c)': axes[2]}, 'x')} "
               f"Mann-Whitney U two-sided; it treats patches as independent. "
               f"{interval_note([result.gradient_ratio, result.cliffs_delta], c.n_seeds)}"
               + (f" {result.gradient_note}" if result.gradient_note else ""))
    return FigureText(f"H1 image gradient: tail / non-tail ratio {ratio} (all cells), {mw}, "
                      f"Cliff's\u00a0δ = {result.cliffs_delta.format('{:.3f}')}", caption)
