"""fig3 — H1 image content: Sobel gradient of tail vs non-tail patches (densities and quantiles)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.axes import Axes

from mechanism.analyzers.h1_edge import H1Result
from mechanism.figures.style import (NONTAIL_COLOR, TAIL_COLOR, THEORY_COLOR, FigureText, Layout,
                                     interval_note)
from mechanism.io.text import format_p, percent

LAYOUT = Layout(1, 2, (9.0, 4.0))
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


def draw(result: H1Result, axes: Sequence[Axes]) -> FigureText:
    """Draw fig3 on ``LAYOUT.panels`` axes: (a) densities of the patch gradient of tail and
    non-tail patches (shared bins) with their means, (b) tail quantiles against non-tail
    quantiles (identity = same distribution)."""
    _draw_densities(result, axes[0])
    _draw_quantiles(result, axes[1])
    c = result.context
    ratio = "undefined" if result.gradient_ratio is None else result.gradient_ratio.format("{:.3f}")
    mw = "undefined" if result.mw_p is None else format_p(result.mw_p)
    caption = (f"Gradient: {result.gradient_method}. Tail = the top-k patches per image by the "
               f"checkpoint's NLL, k = {c.k} of N = {c.n_patches} ({c.grid_h}×{c.grid_w} grid, "
               f"r = {c.top_k_ratio:g}); {c.n_images} {c.split} images of {c.category}. "
               f"Mann-Whitney U two-sided; it treats patches as independent. "
               f"{interval_note([result.gradient_ratio, result.cliffs_delta])}"
               + (f" {result.gradient_note}" if result.gradient_note else ""))
    return FigureText(f"H1 image gradient: tail / non-tail ratio {ratio}, Mann-Whitney p = {mw}, "
                      f"Cliff's\u00a0δ = {result.cliffs_delta.format('{:.3f}')}", caption)
