"""The one look of every figure: a seaborn theme scoped to a ``with`` block, the verdict colours,
panel layouts, and the title + caption every figure carries.

A notebook places a figure anywhere::

    from mechanism.figures import fig1_gradient_concentration as fig1, legends, style
    with style.theme():
        fig, axes = style.new_figure(fig1.LAYOUT)
        style.annotate(fig, fig1.draw(h3_result, axes))
        legends.clear_legends(fig)      # once complete: no legend left on the data
"""
from __future__ import annotations

import contextlib
import re
import textwrap
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import matplotlib
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mechanism.analyzers.context import AnalysisContext
from mechanism.io.text import format_p
from mechanism.stats.evidence import Verdict
from mechanism.stats.bootstrap import Interval

DPI = 150                       # PNG resolution, dots per inch
TITLE_SIZE = 11.0               # figure title font size, points
CAPTION_SIZE = 7.5              # caption font size, points
CHAR_EM = 0.6                   # wrap width per character, in font sizes (DejaVu Sans, wide text)
VERDICT_COLORS = {              # Okabe-Ito colours, distinguishable with colour-blindness
    Verdict.SUPPORTED: "#009E73",
    Verdict.PARTIAL: "#E69F00",
    Verdict.NOT_SUPPORTED: "#D55E00",
    Verdict.INCONCLUSIVE: "#7F7F7F",
}
TAIL_COLOR = "#D55E00"          # tail patches / the tail-aware model
NONTAIL_COLOR = "#0072B2"       # non-tail patches
BASELINE_COLOR = "#7F7F7F"      # the λ = 0 baseline model
THEORY_COLOR = "#000000"        # theoretical / reference values
FLOOR_MARKER = r"$\downarrow$"  # a value below a display floor, drawn at the floor
ZOOMED = "\n(zoomed, not from 0)"  # appended to the label of an axis whose range leaves out 0


@dataclass(frozen=True)
class Layout:
    """A figure's grid of panels and its size."""
    rows: int
    cols: int
    figsize: tuple[float, float]    # (width, height), inches
    width_ratios: tuple[float, ...] | None = None   # relative column widths; None: equal

    @property
    def panels(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True)
class FigureText:
    """What a drawing function says about its figure: a title and a caption (sizes, units,
    intervals, caveats)."""
    title: str
    caption: str


@contextlib.contextmanager
def theme() -> Iterator[None]:
    """Apply the seaborn paper theme inside the block; every rcParam is restored on exit."""
    with matplotlib.rc_context():
        sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
        yield


def new_figure(layout: Layout) -> tuple[Figure, list[Axes]]:
    """A constrained-layout figure (no pyplot, so no global figure state) and its axes in
    row-major order."""
    fig = Figure(figsize=layout.figsize, dpi=DPI, layout="constrained")
    axes = fig.subplots(layout.rows, layout.cols, squeeze=False, width_ratios=layout.width_ratios)
    return fig, list(axes.flat)


def _unbreakable(text: str) -> str:
    """No line break inside ``a = b`` or an interval ``[low, high]`` (no-break spaces, which
    ``textwrap`` does not split at)."""
    text = text.replace(" = ", "\u00a0=\u00a0")
    return re.sub(r"\[([^\]\s]*), ([^\]\s]*)\]", "[\\1,\u00a0\\2]", text)


def annotate(fig: Figure, text: FigureText) -> None:
    """Put ``text.title`` above the panels and the wrapped caption below them, keeping the
    figure size (the panels shrink to make room). ``fig`` uses constrained layout, as
    ``new_figure`` makes it."""
    width_in, height_in = fig.get_size_inches()
    fig.suptitle(textwrap.fill(_unbreakable(text.title), int(width_in * 72 / (CHAR_EM * TITLE_SIZE))),
                 fontsize=TITLE_SIZE)
    lines = textwrap.wrap(_unbreakable(text.caption), int(width_in * 72 / (CHAR_EM * CAPTION_SIZE)))
    height = (len(lines) * 1.25 * CAPTION_SIZE + 6) / 72 / height_in  # figure fraction
    fig.text(0.01, 0.005, "\n".join(lines), ha="left", va="bottom", fontsize=CAPTION_SIZE,
             linespacing=1.25)
    fig.get_layout_engine().set(rect=(0, height, 1, 1 - height))


class Undrawable(Exception):
    """A figure's data cannot be drawn as the figure says; ``render_figures`` skips the figure
    with this reason."""


def interval_errors(intervals: Sequence[Interval | None]) -> tuple[np.ndarray, bool]:
    """``(2, n)`` error-bar lengths below/above each estimate (0 where an interval is missing)
    and whether any interval was present.

    Raises:
        Undrawable: an interval that does not contain its estimate (a percentile bootstrap with
            very few resamples can give one) cannot be drawn as a bar around it.
    """
    err = np.zeros((2, len(intervals)))
    present = False
    for i, iv in enumerate(intervals):
        if iv is not None and iv.low is not None and iv.high is not None:
            if not iv.low <= iv.estimate <= iv.high:
                raise Undrawable(f"the interval [{iv.low:.4g}, {iv.high:.4g}] does not contain its "
                                 f"estimate {iv.estimate:.4g} ({iv.n_boot} bootstrap resamples; "
                                 "more resamples give intervals a bar can show)")
            err[:, i] = iv.estimate - iv.low, iv.high - iv.estimate
            present = True
    return err, present


def images_text(c: AnalysisContext, extra: str = "") -> str:
    """``"200 train images of grass × S = 3 training seeds"`` (no seed part for one seed);
    ``extra`` follows the seed part, e.g. " (patches pooled)"."""
    seeds = f" × S = {c.n_seeds} training seeds{extra}" if c.n_seeds > 1 else ""
    return f"{c.n_images} {c.split} images of {c.category}{seeds}"


def interval_note(intervals: Sequence[Interval | None], n_seeds: int = 1) -> str:
    """Caption sentence on how the intervals were computed (or why there are none); with
    ``n_seeds`` > 1 they run over training seeds × images."""
    given = [iv for iv in intervals if iv is not None]
    boots = {iv.n_boot for iv in given if iv.low is not None}
    if boots:
        over = "images" if n_seeds == 1 else \
            f"S = {n_seeds} training seeds × images, each value the mean over seeds"
        return (f"95% intervals: percentile bootstrap over {over} "
                f"(B = {', '.join(str(b) for b in sorted(boots))}).")
    if any(iv.n_boot for iv in given):
        return "No confidence intervals: too few bootstrap resamples gave a finite value."
    return "No confidence intervals (the analysis ran without bootstrap resamples)."


def seeds_label(counts: Sequence[int]) -> str:
    """Legend label of a metric summarised over training seeds, from the seed counts ``n``."""
    return "one training seed (no std)" if all(n == 1 for n in counts) else "mean ± std over seeds"


def p_text(p: float) -> str:
    """``"p = 0.00125"``, or ``"p < 2.2e-308"`` for a p that underflowed (a bound, not a value)."""
    text = format_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def mark_zoomed(panels: Mapping[str, Axes], axis: str = "y") -> str:
    """Mark every panel (``{"(a)": ax, ...}``) whose linear ``axis`` range leaves out 0: its
    axis label gets ``ZOOMED``; returns the caption sentence naming them ("" if none). Call it
    once the data is drawn."""
    def zoomed(ax: Axes) -> bool:
        low, high = sorted(getattr(ax, f"get_{axis}lim")())
        return getattr(ax, f"get_{axis}scale")() == "linear" and (low > 0 or high < 0)

    names = [name for name, ax in panels.items() if zoomed(ax)]
    for name in names:
        label = getattr(panels[name], f"get_{axis}label")()
        getattr(panels[name], f"set_{axis}label")(f"{label}{ZOOMED}")
    if not names:
        return ""
    axes = "axis" if len(names) == 1 else "axes"
    return f"{', '.join(names)}: {axis} {axes} zoomed to the data, not from 0."


def plot_floored(ax: Axes, x: Sequence[float], y: Sequence[float], floor: float, fmt: str,
                 color: str, label: str, **kwargs) -> int:
    """Plot ``y`` against ``x`` with ``fmt`` where ``y ≥ floor``; values below the floor are
    bounds, not points, drawn as ``FLOOR_MARKER`` at the floor (legend key: ``floor_key``).
    Returns how many were below."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    below = y < floor
    ax.plot(x[~below], y[~below], fmt, color=color, label=label, **kwargs)
    ax.plot(x[below], np.full(below.sum(), floor), marker=FLOOR_MARKER, color=color, ms=8, ls="none")
    return int(below.sum())


def floor_key(ax: Axes, floor: float, what: str) -> None:
    """One legend entry for every ``FLOOR_MARKER`` of ``ax``: "<what> below <floor>"."""
    ax.plot([], [], marker=FLOOR_MARKER, color=THEORY_COLOR, ms=8, ls="none",
            label=f"{what} < {floor:g} (at the floor)")
