"""fig7 — hypothesis summary: each analysed hypothesis' verdict (colour coded) with its claims
and their statuses; any subset of H1, H3, H4, H7."""
from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.patches import FancyBboxPatch

from mechanism.analyzers.h1_edge import H1Result
from mechanism.analyzers.h3_gradient import H3Result
from mechanism.analyzers.h4_dilution import H4Result
from mechanism.analyzers.h7_calibration import H7Result
from mechanism.analyzers.registry import HYPOTHESES, TITLES
from mechanism.errors import MechanismError
from mechanism.figures.style import VERDICT_COLORS, FigureText, Layout
from mechanism.report.headline import claim_text
from mechanism.report.study import STUDY_CLAIMS
from mechanism.stats.evidence import MIN_SEEDS

LAYOUT = Layout(1, 1, (10.0, 5.2))
EVIDENCE_CHARS = 92          # wrap width of the evidence text, characters


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
        verdict = result.evidence.verdict
        ax.add_patch(FancyBboxPatch((0.19, y - 0.27), 0.17, 0.54, boxstyle="round,pad=0.01",
                                    fc=VERDICT_COLORS[verdict], ec="none"))
        ax.text(0.275, y + 0.08, verdict.value, ha="center", va="center", fontsize=8.5,
                fontweight="bold", color="white")
        ax.text(0.275, y - 0.16, f"study: {STUDY_CLAIMS[name].verdict}", ha="center",
                va="center", fontsize=6.5, color="white")
        evidence = "\n".join(textwrap.fill(claim_text(c), EVIDENCE_CHARS)
                             for c in result.evidence.claims)
        ax.text(0.39, y, evidence, va="center", fontsize=6.5)
    contexts = {f"{results[h].context.category}, grid {results[h].context.grid_h}×"
                f"{results[h].context.grid_w}" for h in names}
    caption = ("Verdicts from named claims (SPEC §7): a claim holds when its 95% interval lies on "
               "the claimed side of its threshold, fails when it lies on the other, else is not "
               f"resolved; claims about what training changes need ≥ {MIN_SEEDS} seeds. SUPPORTED: "
               "all hold; NOT SUPPORTED: all fail; PARTIAL: both, none open; INCONCLUSIVE "
               "otherwise. Identities (N/k, oracle purity) never count. The study's verdict (its "
               f"own rules) is printed under ours. Data: {'; '.join(sorted(contexts))}.")
    return FigureText(f"Mechanism hypotheses {', '.join(names)}: verdicts and claims", caption)
