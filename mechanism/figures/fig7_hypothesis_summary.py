"""fig7 — hypothesis summary: each analysed hypothesis' verdict (colour coded) with its key
evidence; any subset of H1, H3, H4, H7."""
from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.patches import FancyBboxPatch

from mechanism.analyzers.context import ALPHA
from mechanism.analyzers.h1_edge import RATIO_THRESHOLD, H1Result
from mechanism.analyzers.h3_gradient import PARTIAL_AMPLIFICATION, SUPPORT_SHARE, H3Result
from mechanism.analyzers.h4_dilution import DILUTED_RATIO, H4Result
from mechanism.analyzers.h7_calibration import QQ_PARTIAL, QQ_SUPPORTED, TAIL_SUPPORTED, H7Result
from mechanism.analyzers.registry import HYPOTHESES, TITLES
from mechanism.errors import MechanismError
from mechanism.figures.style import VERDICT_COLORS, FigureText, Layout
from mechanism.io.text import percent
from mechanism.report.headline import headline

LAYOUT = Layout(1, 1, (9.0, 4.6))
EVIDENCE_CHARS = 86          # wrap width of the evidence text, characters
RULES = {
    "H1": (f"SUPPORTED needs tail nearer the edges with KS p < {ALPHA:g} and gradient ratio ≥ "
           f"{RATIO_THRESHOLD:g} with Mann-Whitney p < {ALPHA:g}; PARTIAL: one of the two"),
    "H3": (f"SUPPORTED needs amplification ≥ {SUPPORT_SHARE:g}·N/k; PARTIAL: > "
           f"{PARTIAL_AMPLIFICATION:g}"),
    "H4": (f"SUPPORTED needs effective concentration falling above the best ratio and a lower "
           f"measured Pixel AP at {percent(DILUTED_RATIO)}; PARTIAL: the first half only"),
    "H7": (f"SUPPORTED needs QQ r ≥ {QQ_SUPPORTED:g} and tail error ≤ {TAIL_SUPPORTED:g}; "
           f"PARTIAL: QQ r ≥ {QQ_PARTIAL:g}"),
}


def draw(results: Mapping[str, H1Result | H3Result | H4Result | H7Result],
         axes: Sequence[Axes]) -> FigureText:
    """Draw fig7 on one axes: per hypothesis (keys ``"H1"``, ``"H3"``, ``"H4"``, ``"H7"``, any
    subset) its name, verdict box and key evidence.

    Raises:
        MechanismError: if ``results`` holds none of the four hypotheses.
    """
    names = [h for h in HYPOTHESES if results.get(h) is not None]
    if not names:
        raise MechanismError(f"the hypothesis summary needs at least one of {', '.join(HYPOTHESES)}")
    ax = axes[0]
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, len(HYPOTHESES))
    for i, name in enumerate(names):
        result = results[name]
        y = (len(HYPOTHESES) + len(names)) / 2 - 0.5 - i     # rows centred vertically
        ax.text(0.0, y + 0.12, name, fontsize=12, fontweight="bold", va="center")
        ax.text(0.0, y - 0.2, textwrap.fill(TITLES[name], 22), fontsize=7.5, va="center")
        ax.add_patch(FancyBboxPatch((0.19, y - 0.27), 0.17, 0.54, boxstyle="round,pad=0.01",
                                    fc=VERDICT_COLORS[result.verdict], ec="none"))
        ax.text(0.275, y, result.verdict.value, ha="center", va="center", fontsize=9,
                fontweight="bold", color="white")
        ax.text(0.39, y, textwrap.fill(headline(result), EVIDENCE_CHARS), va="center",
                fontsize=8)
    contexts = {f"{results[h].context.category}, grid {results[h].context.grid_h}×"
                f"{results[h].context.grid_w}" for h in names}
    caption = (f"Verdicts by the SPEC §4 rules at α = {ALPHA:g}: "
               + "; ".join(f"{h}: {RULES[h]}" for h in names)
               + f". Data: {'; '.join(sorted(contexts))}.")
    return FigureText(f"Mechanism hypotheses {', '.join(names)}: verdicts and key evidence", caption)
