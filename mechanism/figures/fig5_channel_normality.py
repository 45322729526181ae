"""fig5 — H7 per-channel normality: sorted per-channel KS and Shapiro-Wilk p-values against
α, and each channel's mean and std against N(0, 1)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.axes import Axes

from mechanism.stats.evidence import ALPHA
from mechanism.analyzers.h7_calibration import H7Result
from mechanism.figures.fig4_latent_qq import models
from mechanism.figures.style import THEORY_COLOR, FigureText, Layout, floor_key, plot_floored

LAYOUT = Layout(1, 2, (9.0, 4.2))
P_FLOOR = 1e-12     # p-values below this (decisive rejections, or 0 by underflow) are drawn at it
FLOOR_SHIFT = 0.3   # rank offset between the models' floor markers, so that neither hides the other


def _draw_pvalues(result: H7Result, ax: Axes) -> list[str]:
    """Sorted p-value curves, values below ``P_FLOOR`` as floor markers; returns one caption
    phrase per curve with such values ("analysed model, KS vs N(0, 1): 40")."""
    floored = []
    drawn = models(result)
    for i, (label, cal, color) in enumerate(drawn):
        shift = (i - (len(drawn) - 1) / 2) * FLOOR_SHIFT
        for test, values, style in (("KS vs N(0, 1)", cal.channel_ks_p, "-"),
                                    ("Shapiro-Wilk", cal.channel_shapiro_p, "--")):
            p = np.sort(np.asarray(values, dtype=float))
            n = plot_floored(ax, np.arange(1, len(p) + 1) + shift, p, P_FLOOR, style, color,
                             f"{label}, {test}", lw=1.3)
            if n:
                floored.append(f"{label}, {test}: {n}")
    ax.axhline(ALPHA, color=THEORY_COLOR, lw=0.8, ls=":", label=f"α = {ALPHA:g}")
    if floored:
        floor_key(ax, P_FLOOR, "p")
    ax.set_yscale("log")
    ax.set_ylim(P_FLOOR / 10, 3.0)
    ax.set_xlabel("channel rank (ascending p)")
    ax.set_ylabel("p-value (log scale)")
    ax.set_title("(a) per-channel normality tests")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.21), ncol=2, fontsize="small")  # below:
    # the curves leave no free corner
    return floored


def _draw_moments(result: H7Result, ax: Axes) -> None:
    for label, cal, color in models(result):
        ax.scatter(cal.channel_mean, cal.channel_std, s=12, color=color, alpha=0.7, lw=0,
                   label=f"{label} ({cal.n_channels} channels)")
    ax.axvline(0, color=THEORY_COLOR, lw=0.6, alpha=0.6)
    ax.axhline(1, color=THEORY_COLOR, lw=0.6, alpha=0.6)
    ax.plot([0], [1], "*", ms=11, color=THEORY_COLOR, label="N(0, 1)")
    ax.set_xlabel("channel mean of z")
    ax.set_ylabel("channel std of z")
    ax.set_title("(b) per-channel mean and std")
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.3 * (high - low))     # room for the legend above the points
    ax.legend(loc="upper center", ncol=2)


def draw(result: H7Result, axes: Sequence[Axes]) -> FigureText:
    """Draw fig5 on ``LAYOUT.panels`` axes: (a) each channel's KS (against N(0, 1)) and
    Shapiro-Wilk p-value, sorted, with α, (b) each channel's mean and population std of z."""
    floored = _draw_pvalues(result, axes[0])
    _draw_moments(result, axes[1])
    c, cand = result.context, result.candidate
    d = cand.n_channels
    caption = (f"One checkpoint, {c.checkpoint}; {c.n_images} {c.split} images of {c.category}, "
               f"{c.grid_h}×{c.grid_w} grid; "
               f"KS on all {cand.n_values // d:,} values of each channel, Shapiro-Wilk on a seeded "
               f"subsample of {cand.shapiro_n:,} patch positions per channel. Both tests treat "
               f"neighbouring patches as independent, so they overstate the evidence against "
               f"normality. Mean p-value: KS {cand.mean_ks_p:.3g}, Shapiro-Wilk "
               f"{cand.mean_shapiro_p:.3g} (analysed model)."
               + (f" p-values below {P_FLOOR:g} are bounds, drawn as ↓ at {P_FLOOR:g} (ranks of the "
                  f"two models offset by ±{FLOOR_SHIFT / 2:g}): {'; '.join(floored)}." if floored else ""))
    title = (f"H7 per-channel normality (α = {ALPHA:g}): KS rejects N(0, 1) in "
             f"{round(cand.ks_reject_share * d)}/{d} channels, Shapiro-Wilk rejects normality in "
             f"{round(cand.shapiro_reject_share * d)}/{d}")
    return FigureText(title, caption)
