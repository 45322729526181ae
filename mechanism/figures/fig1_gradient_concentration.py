"""fig1 — H3 gradient concentration: tail vs non-tail mean gradient per λ condition, and the
tail/non-tail ratio per condition against what the loss's identity predicts for
non-interacting patches."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.axes import Axes

from mechanism.analyzers.h3_gradient import (SURVIVING_SHARE, H3Result, amplification_identity,
                                             claim_weight)
from mechanism.report.headline import claim_text
from mechanism.figures.style import (NONTAIL_COLOR, TAIL_COLOR, THEORY_COLOR, FigureText, Layout,
                                     interval_errors, interval_note, images_text)

LAYOUT = Layout(1, 2, (9.0, 4.0))
GRADIENT_LABEL = "mean ‖∂L/∂x‖₂ per patch"


def _labels(result: H3Result) -> list[str]:
    return [c.label.replace(" (", "\n(") for c in result.conditions]


def _bar_axis_scale(ax: Axes, values: Sequence[float]) -> str:
    """Log y when every value is positive and they span more than 10×; returns the scale."""
    positive = [v for v in values if v > 0]
    scale = "log" if len(positive) == len(values) and max(positive) > 10 * min(positive) else "linear"
    ax.set_yscale(scale)
    return scale


def _draw_gradients(result: H3Result, ax: Axes) -> None:
    x = np.arange(len(result.conditions))
    width = 0.38
    for offset, name, color, pick in ((-width / 2, "tail patches", TAIL_COLOR, "tail_gradient"),
                                      (width / 2, "non-tail patches", NONTAIL_COLOR, "nontail_gradient")):
        intervals = [getattr(c, pick) for c in result.conditions]
        err, present = interval_errors(intervals)
        ax.bar(x + offset, [iv.estimate for iv in intervals], width, color=color, label=name,
               yerr=err if present else None, capsize=3, error_kw={"elinewidth": 1})
    values = [getattr(c, pick).estimate for c in result.conditions
              for pick in ("tail_gradient", "nontail_gradient")]
    scale = _bar_axis_scale(ax, values)
    ax.set_xticks(x, _labels(result))
    ax.set_ylabel(GRADIENT_LABEL + (" (log scale)" if scale == "log" else ""))
    ax.set_xlabel("loss condition")
    ax.set_title("(a) gradient on tail vs non-tail patches")
    ax.legend(loc="upper left")


def _draw_ratios(result: H3Result, ax: Axes) -> list[str]:
    """Ratio bars; returns one note per condition whose ratio is undefined."""
    x = np.arange(len(result.conditions))
    ratios = [c.ratio for c in result.conditions]
    drawn = [i for i, r in enumerate(ratios) if r is not None]
    err, present = interval_errors([ratios[i] for i in drawn])
    ax.bar(x[drawn], [ratios[i].estimate for i in drawn], 0.5, color=TAIL_COLOR, alpha=0.85,
           yerr=err if present else None, capsize=3, label="measured")
    notes = []
    for i, c in enumerate(result.conditions):
        if c.ratio is None:
            ax.annotate("no finite ratio\n(see caption)", (x[i], 0.06),
                        xycoords=("data", "axes fraction"), ha="center", color=THEORY_COLOR)
            notes.append(c.ratio_note)
    values = [ratios[i].estimate for i in drawn]
    base = result.conditions[0].ratio
    claim_lam = claim_weight([c.tail_weight for c in result.conditions], result.own_tail_weight)
    label = "ratio at λ=0 × identity (non-interacting)"   # on the first identity line only
    for i, c in enumerate(result.conditions):   # the ratio the identity predicts without interaction
        identity = amplification_identity(c.tail_weight, result.theoretical_amplification)
        if base is None or c.tail_weight == 0 or identity is None:
            continue
        expected = base.estimate * identity
        ax.hlines(expected, x[i] - 0.4, x[i] + 0.4, color=THEORY_COLOR, ls="--", lw=1.2, label=label)
        label = None
        values.append(expected)
        if c.tail_weight == claim_lam:
            ax.hlines(SURVIVING_SHARE * expected, x[i] - 0.4, x[i] + 0.4, color=THEORY_COLOR,
                      ls=":", lw=1.2, label=f"H3.survives_interaction: {SURVIVING_SHARE:g} × identity")
    if values and _bar_axis_scale(ax, values) == "log":
        ax.set_ylim(top=max(values) * 25)     # room for the legend above the bars
    ax.axhline(1.0, color=THEORY_COLOR, lw=0.6, alpha=0.5, label="ratio 1 (no concentration)")
    ax.set_xticks(x, _labels(result))
    ax.set_xlabel("loss condition")
    ax.set_ylabel("tail / non-tail gradient ratio")
    ax.set_title("(b) concentration ratio")
    ax.legend(loc="upper left")
    return notes


def draw(result: H3Result, axes: Sequence[Axes]) -> FigureText:
    """Draw fig1 on ``LAYOUT.panels`` axes: (a) mean per-patch gradient norm of tail and
    non-tail patches per λ condition, (b) their ratio with the expected ratio of a tail-aware
    condition reaching the theoretical amplification N/k."""
    _draw_gradients(result, axes[0])
    notes = _draw_ratios(result, axes[1])
    c = result.context
    lam = claim_weight([x.tail_weight for x in result.conditions], result.own_tail_weight)
    cond = result.condition(lam)
    identity = amplification_identity(lam, result.theoretical_amplification)
    amp = (f"amplification at λ = {lam:g}: "
           + (cond.amplification.format("{:.3g}×") if cond.amplification is not None
              else f"undefined ({cond.amplification_note})")
           + (f" vs identity {identity:.3g}×" if identity is not None else ""))
    intervals = [iv for cond in result.conditions
                 for iv in (cond.tail_gradient, cond.nontail_gradient, cond.ratio)]
    caption = (f"Gradient of each image's own Tail-Aware Loss L (nats/dim) with respect to the flow "
               f"input x (backbone features), L2 norm over channels per patch; tail = the top-k "
               f"patches by the checkpoint's NLL, k = {c.k} of N = {c.n_patches} "
               f"({c.grid_h}×{c.grid_w} grid, r = {c.top_k_ratio:g}). {images_text(c)}. Amplification = ratio(λ) / ratio(λ=0); {amp} "
               f"(N/k = {c.n_patches}/{c.k} = {result.theoretical_amplification:.3g}, a definition). "
               f"{interval_note(intervals, c.n_seeds)}" + "".join(f" {n[0].upper()}{n[1:]}." for n in notes if n)
               + " " + " ".join(f"{claim_text(x)}." for x in result.evidence.claims))
    return FigureText(f"H3 gradient concentration: {amp} — {result.evidence.verdict.value}", caption)
