"""fig7 — hypothesis summary: the headline and the random-k control on top (a mechanism explains
an effect only where there is one), then each analysed hypothesis' verdict (colour coded) with
the study's, its claims and their statuses, and H1's flip control; any subset of H1, H3, H4, H7."""
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
from mechanism.eval.metrics.detection import METRIC_LABELS
from mechanism.eval.observed_effect import OBSERVED_METRICS, ObservedEffect
from mechanism.report.headline import claim_text
from mechanism.report.tables.h1 import control_sentence
from mechanism.report.tables.observed_effect import format_points
from mechanism.report.study import STUDY_CLAIMS
from mechanism.stats.evidence import MIN_SEEDS

LAYOUT = Layout(1, 1, (10.0, 5.2))
EVIDENCE_CHARS = 92          # wrap width of the evidence text, characters


def _effect_line(label: str, effect: ObservedEffect) -> str:
    return (f"{label} (S = {effect.n_seeds} × {effect.n_good + effect.n_defective} test images): "
            + "; ".join(f"Δ {METRIC_LABELS[k]} {format_points(effect.metrics[k].difference)}"
                        for k in OBSERVED_METRICS))


def draw(results: Mapping[str, H1Result | H3Result | H4Result | H7Result],
         axes: Sequence[Axes], observed: ObservedEffect | None = None,
         control: ObservedEffect | None = None) -> FigureText:
    """Draw fig7 on one axes: the headline (``observed``) and the random-k ``control`` when
    given, then per hypothesis (keys ``"H1"``, ``"H3"``, ``"H4"``, ``"H7"``, any subset) its
    name, verdict box and key evidence.

    Raises:
        MechanismError: if ``results`` holds none of the four hypotheses.
    """
    names = [h for h in HYPOTHESES if results.get(h) is not None]
    if not names:
        raise MechanismError(f"the hypothesis summary needs at least one of {', '.join(HYPOTHESES)}")
    ax = axes[0]
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    effects = [line for line in (
        None if observed is None else _effect_line("Headline, tail-aware − λ = 0", observed),
        None if control is None else _effect_line("Random-k control, top-k − random-k", control))
        if line is not None]
    ax.set_ylim(0, len(HYPOTHESES) + (0.8 if effects else 0))
    if effects:
        ax.text(0.0, len(HYPOTHESES) + 0.35, "\n".join(textwrap.fill(e, 150) for e in effects),
                va="center", fontsize=7)
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
        lines = [claim_text(c) for c in result.evidence.claims]
        if getattr(result, "flip_control", None) is not None:
            lines.append(control_sentence(result.flip_control))
        evidence = "\n".join(textwrap.fill(line, EVIDENCE_CHARS) for line in lines)
        ax.text(0.39, y, evidence, va="center", fontsize=6.5)
    contexts = {f"{results[h].context.category}, grid {results[h].context.grid_h}×"
                f"{results[h].context.grid_w}" for h in names}
    caption = ("Verdicts from named claims (SPEC §7): a claim holds when its 95% interval lies on "
               "the claimed side of its threshold, fails when it lies on the other, else is not "
               f"resolved; claims about what training changes need ≥ {MIN_SEEDS} seeds. SUPPORTED: "
               "all hold; NOT SUPPORTED: all fail; PARTIAL: both, none open; INCONCLUSIVE "
               "otherwise. Identities (N/k, oracle purity) never count. The study's verdict (its "
               f"own rules) is printed under ours. Data: {'; '.join(sorted(contexts))}."
               + (" Top: the headline and the random-k control, 95% intervals over seeds × test "
                  "images, in percentage points." if effects else ""))
    return FigureText(f"Mechanism hypotheses {', '.join(names)}: verdicts and claims", caption)
