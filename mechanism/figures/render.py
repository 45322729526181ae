"""Render every figure (fig1–fig8) whose data is at hand as ``<out>/figN_<name>.{png,pdf}``.

A figure whose data is missing is not drawn: the outcome names it with a one-line reason, and a
file of it left by an earlier render is removed so the folder shows only what these inputs
support. Figures are ``matplotlib.figure.Figure`` objects rendered by the non-interactive Agg
(PNG) and PDF canvases; pyplot is never used, so nothing global is left open.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mechanism.analyzers.h1_edge import H1Result
from mechanism.analyzers.h3_gradient import H3Result
from mechanism.analyzers.h4_dilution import H4Result
from mechanism.analyzers.h7_calibration import H7Result
from mechanism.figures import fig1_gradient_concentration as fig1
from mechanism.figures import fig2_tail_location as fig2
from mechanism.figures import fig3_image_gradient as fig3
from mechanism.figures import fig4_latent_qq as fig4
from mechanism.figures import fig5_channel_normality as fig5
from mechanism.figures import fig6_tail_weight_ablation as fig6
from mechanism.figures import fig7_hypothesis_summary as fig7
from mechanism.figures import fig8_topk_dilution as fig8
from mechanism.figures.legends import clear_legends
from mechanism.figures.style import DPI, FigureText, Layout, Undrawable, annotate, new_figure, theme
from mechanism.io.atomic import atomic_path
from mechanism.eval.observed_effect import ObservedEffect
from mechanism.sweep.results import SweepRun

FORMATS = ("png", "pdf")


@dataclass(frozen=True)
class FigureInputs:
    """Everything the figures draw from; each part is optional."""
    h1: H1Result | None = None
    h3: H3Result | None = None
    h4: H4Result | None = None
    h7: H7Result | None = None
    sweep_runs: list[SweepRun] | None = None   # runs of one or more sweeps (fig6 uses λ sweeps)
    category: str | None = None                # fig6's category; None: the results' or the λ sweep's only one
    observed: ObservedEffect | None = None     # the headline (fig7)
    control: ObservedEffect | None = None      # the random-k control (fig7)

    @classmethod
    def from_results(cls, results: Mapping[str, object], sweep_runs: list[SweepRun] | None = None,
                     category: str | None = None,
                     effects: Mapping[str, ObservedEffect] | None = None) -> "FigureInputs":
        """From ``{"H1": H1Result, ...}`` (e.g. ``read_results``), any subset, and the report's
        ``{"observed_effect": …, "random_k_control": …}`` (``read_effects``), either optional."""
        effects = effects or {}
        return cls(*(results.get(h) for h in ("H1", "H3", "H4", "H7")), sweep_runs, category,
                   effects.get("observed_effect"), effects.get("random_k_control"))

    @property
    def results(self) -> dict[str, object]:
        """The hypothesis results present, by name."""
        named = {"H1": self.h1, "H3": self.h3, "H4": self.h4, "H7": self.h7}
        return {h: r for h, r in named.items() if r is not None}


@dataclass(frozen=True)
class RenderOutcome:
    """What ``render_figures`` did."""
    written: tuple[Path, ...]   # every file written, PNG and PDF per figure
    skipped: tuple[str, ...]    # one line per figure not drawn: "fig6: no sweep runs given"
    removed: tuple[Path, ...]   # stale files of skipped figures from an earlier render


Drawer = Callable[[Sequence[Axes]], FigureText]
Plan = tuple[Layout, Drawer] | str          # what to draw, or why it cannot be drawn


def _needs(result, name: str, layout: Layout, draw) -> Plan:
    return f"no {name} result" if result is None else (layout, partial(draw, result))


def _fig6_category(i: FigureInputs, runs: list[SweepRun]) -> str | None:
    if i.category is not None:
        return i.category
    categories = {r.context.category for r in i.results.values()} or {r.category for r in runs}
    return categories.pop() if len(categories) == 1 else None


def _plan_fig6(i: FigureInputs) -> Plan:
    if not i.sweep_runs:
        return "no sweep runs given"
    runs = [r for r in i.sweep_runs if r.param == fig6.PARAM and r.selection == fig6.SELECTION]
    if not runs:
        return f"the sweep runs hold no {fig6.PARAM} sweep with {fig6.SELECTION} selection"
    category = _fig6_category(i, runs)
    if category is None:
        return (f"the {fig6.PARAM} sweep covers categories "
                f"{', '.join(sorted({r.category for r in runs}))}: name one")
    if not fig6.ablation_runs(runs, category):
        return f"the {fig6.PARAM} sweep has no runs on category {category}"
    return fig6.LAYOUT, partial(fig6.draw, runs, category)


def _plan_fig7(i: FigureInputs) -> Plan:
    return (fig7.LAYOUT, partial(fig7.draw, i.results, observed=i.observed, control=i.control)) \
        if i.results else "no hypothesis results"


def _plan_fig8(i: FigureInputs) -> Plan:
    return "no H4 result" if i.h4 is None else (fig8.layout(i.h4), partial(fig8.draw, i.h4))


FIGURES: dict[str, Callable[[FigureInputs], Plan]] = {
    "fig1_gradient_concentration": lambda i: _needs(i.h3, "H3", fig1.LAYOUT, fig1.draw),
    "fig2_tail_location": lambda i: _needs(i.h1, "H1", fig2.LAYOUT, fig2.draw),
    "fig3_image_gradient": lambda i: _needs(i.h1, "H1", fig3.LAYOUT, fig3.draw),
    "fig4_latent_qq": lambda i: _needs(i.h7, "H7", fig4.LAYOUT, fig4.draw),
    "fig5_channel_normality": lambda i: _needs(i.h7, "H7", fig5.LAYOUT, fig5.draw),
    "fig6_tail_weight_ablation": _plan_fig6,
    "fig7_hypothesis_summary": _plan_fig7,
    "fig8_topk_dilution": _plan_fig8,
}
"""File stem → plan of the figure from the inputs."""


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Write ``fig`` atomically as ``<stem>.png`` (``DPI``) and ``<stem>.pdf``; returns the paths.

    The layout is computed once, for the first format, and kept for the others.
    """
    paths = []
    for fmt in FORMATS:
        path = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI,
                        metadata={"CreationDate": None} if fmt == "pdf" else None)
        fig.set_layout_engine("none")
        paths.append(path)
    return paths


def render_figures(inputs: FigureInputs, out_dir: str | Path) -> RenderOutcome:
    """Draw every figure the inputs support into ``out_dir`` (created if missing).

    Raises:
        MechanismError: unwritable output, or inputs a figure cannot use (e.g. a sweep with two
            runs of one λ and seed).
    """
    out_dir = Path(out_dir)
    written, skipped, removed = [], [], []
    with theme():
        for stem, plan_of in FIGURES.items():
            plan = plan_of(inputs)
            if not isinstance(plan, str):
                layout, drawer = plan
                fig, axes = new_figure(layout)
                try:
                    annotate(fig, drawer(axes))
                except Undrawable as e:
                    plan = str(e)
                else:
                    clear_legends(fig)
                    written += save_figure(fig, out_dir / stem)
                    continue
            skipped.append(f"{stem.split('_')[0]}: {plan}")
            for fmt in FORMATS:
                stale = out_dir / f"{stem}.{fmt}"
                if stale.is_file():
                    stale.unlink()
                    removed.append(stale)
    return RenderOutcome(tuple(written), tuple(skipped), tuple(removed))
