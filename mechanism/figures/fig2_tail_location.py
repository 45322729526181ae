"""fig2 — H1 tail location: where on the patch grid the tail patches sit, and their edge
distances against the exact law of a uniformly random cell."""
from __future__ import annotations

from typing import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from mechanism.analyzers.h1_edge import H1Result
from mechanism.figures.style import (NONTAIL_COLOR, TAIL_COLOR, THEORY_COLOR, FigureText, Layout,
                                     interval_note, p_text, images_text)

LAYOUT = Layout(1, 2, (9.5, 4.3))
ANNOTATE_MAX_CELLS = 64     # write each cell's value into the heat-map up to this many cells
NEVER_COLOR = "#BDBDBD"     # heat-map cells never in the tail


def _draw_heatmap(result: H1Result, ax: Axes) -> None:
    c = result.context
    relative = np.asarray(result.tail_share_map, dtype=float) * c.n_patches   # 1 = uniform
    positive = relative[relative > 0]
    # a log scale centred on uniform (1): a few corner cells many times above uniform must not
    # turn the interior, below uniform, into one dark colour
    span = max(positive.max(), 1 / positive.min(), 2.0) if positive.size else 2.0
    cmap = mpl.colormaps["vlag"].with_extremes(bad=NEVER_COLOR)
    image = ax.imshow(np.where(relative > 0, relative, np.nan), cmap=cmap,
                      norm=LogNorm(vmin=1 / span, vmax=span), interpolation="nearest")
    colorbar = ax.figure.colorbar(image, ax=ax, shrink=0.9)
    colorbar.set_label("tail share × N (1 = uniform; log)")
    if relative.size <= ANNOTATE_MAX_CELLS:
        for (i, j), v in np.ndenumerate(relative):
            dark = v > 0 and abs(np.log(v)) > 0.6 * np.log(span)
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("column j (cells)")
    ax.set_ylabel("row i (cells)")
    ax.grid(False)
    ax.set_title(f"(a) tail-patch frequency on the {c.grid_h}×{c.grid_w} grid")


def _draw_distances(result: H1Result, ax: Axes) -> None:
    counts = np.asarray(result.tail_distance_counts, dtype=float)
    share = counts / counts.sum()
    t = np.arange(len(share))
    ax.bar(t, share, 0.7, color=TAIL_COLOR, alpha=0.8, label="tail patches")
    ax.plot(t, result.uniform_distance_pmf, "o", color=THEORY_COLOR, ms=5,
            label="uniform cell (exact pmf)")
    mean = result.tail_distance_mean
    ax.axvline(mean.estimate, color=TAIL_COLOR, ls="--", lw=1.2,
               label=f"tail mean {mean.estimate:.3f} cells")
    if mean.low is not None:
        ax.axvspan(mean.low, mean.high, color=TAIL_COLOR, alpha=0.15, lw=0, label="95% CI of the mean")
    ax.axvline(result.uniform_distance_mean, color=NONTAIL_COLOR, ls=":", lw=1.5,
               label=f"uniform mean {result.uniform_distance_mean:.3f} cells")
    ax.set_xticks(t)
    ax.set_xlabel("edge distance d = min(i, j, H−1−i, W−1−j) (cells)")
    ax.set_ylabel("share of patches")
    ax.set_title(f"(b) edge distance: KS D = {result.ks_statistic:.3f}, {p_text(result.ks_p)}")
    ax.legend(loc="best")


def _side_text(result: H1Result) -> str:
    """The tail share per side against uniform (from the flip control), for the caption."""
    f = result.flip_control
    if f is None:
        return ""
    return " Tail share per side (uniform): " + ", ".join(
        f"{side} {100 * f.original_sides[side].estimate:.1f}% ({100 * f.uniform_sides[side]:.1f}%)"
        for side in f.original_sides) + "."


def draw(result: H1Result, axes: Sequence[Axes]) -> FigureText:
    """Draw fig2 on ``LAYOUT.panels`` axes: (a) heat-map of how often each cell is a tail
    patch relative to uniform (share × N, 1 = uniform), (b) the tail patches' edge-distance
    distribution against the exact uniform pmf, with both means."""
    _draw_heatmap(result, axes[0])
    _draw_distances(result, axes[1])
    c = result.context
    caption = (f"Tail = the top-k patches per image by the checkpoint's NLL, k = {c.k} of "
               f"N = {c.n_patches} ({c.grid_h}×{c.grid_w} grid, r = {c.top_k_ratio:g}); "
               f"{images_text(c)}, {c.n_seeds * c.n_images * c.k} tail patches; "
               f"(a) on a log colour scale centred on uniform (blue below, red above), grey: never in "
               f"the tail. "
               f"Tail edge distance {result.tail_distance_mean.estimate:.3f} ± "
               f"{result.tail_distance_std:.3f} cells (mean ± std) vs "
               f"{result.uniform_distance_mean:.3f} for a uniform cell. KS test: {result.ks_method}; "
               f"it treats patches as independent. {interval_note([result.tail_distance_mean], c.n_seeds)}"
               + _side_text(result))
    side = "" if result.tail_distance_mean.estimate < result.uniform_distance_mean else "not "
    return FigureText(f"H1 tail location: tail patches are {side}nearer the edges than a uniform cell "
                      f"(KS {p_text(result.ks_p)}) — {result.evidence.verdict.value}", caption)
