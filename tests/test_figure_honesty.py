"""What a reviewer checks in the figures (issue 12 item 6): legends off the data, p-value floors
drawn as floors, zoomed axes said, fig3's two means told apart by their ratio's interval.

Legend coverage is checked here on markers and bars from matplotlib's artist extents, independently
of ``mechanism.figures.legends``; on the hand-made results and on the committed demo report.
"""
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from matplotlib.patches import Rectangle

from mechanism.figures import fig2_tail_location as fig2
from mechanism.figures import fig3_image_gradient as fig3
from mechanism.figures import fig5_channel_normality as fig5
from mechanism.figures import fig6_tail_weight_ablation as fig6
from mechanism.figures.legends import clear_legends
from mechanism.figures.render import FIGURES, FigureInputs
from mechanism.figures.style import (FLOOR_MARKER, ZOOMED, Layout, annotate, mark_zoomed,
                                     new_figure, p_text, theme)
from mechanism.report.files import read_results
from mechanism.sweep.results import read_sweep_results
from test_figures import draw_text, drawn, make_h1, make_h3, make_h4, make_h7, make_runs

REPORT = Path(__file__).resolve().parents[1] / "analysis_results" / "mechanism" / "categories" / "grass"


def covered_marks(ax) -> list[str]:
    """Markers and bars of ``ax`` that its legend's box covers."""
    legend = ax.get_legend()
    if legend is None:
        return []
    box = legend.get_window_extent()
    hits = []
    for line in ax.lines:
        if line.get_transform() is ax.transData and line.get_marker() not in ("None", "", " ", None):
            for x, y in ax.transData.transform(line.get_xydata()):
                if box.contains(x, y):
                    hits.append(f"marker of {line.get_label()!r} at ({x:.0f}, {y:.0f}) px")
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_height() and \
                patch.get_transform().contains_branch(ax.transData) and \
                box.overlaps(patch.get_window_extent()):
            hits.append(f"bar {patch.get_label()!r}")
    return hits


def rendered(inputs: FigureInputs):
    """Every figure the inputs support, drawn and finished as ``render_figures`` does."""
    with theme():
        for stem, plan_of in FIGURES.items():
            layout, drawer = plan_of(inputs)
            fig, axes = new_figure(layout)
            text = drawer(axes)
            annotate(fig, text)
            clear_legends(fig)
            fig.draw_without_rendering()
            yield stem, fig, text


def hand_made() -> FigureInputs:
    return FigureInputs(make_h1(), make_h3(), make_h4(), make_h7(), make_runs())


def committed_report() -> FigureInputs:
    return FigureInputs.from_results(read_results(REPORT), read_sweep_results(REPORT / "sweeps"))


@pytest.mark.parametrize("inputs", [hand_made, committed_report])
def test_no_legend_covers_a_marker_or_bar(inputs):
    for stem, fig, _ in rendered(inputs()):
        for i, ax in enumerate(fig.axes):
            assert covered_marks(ax) == [], f"{stem} panel {i}"


def test_clear_legends_grows_the_axis_and_moves_no_data():
    with theme():
        fig, (ax,) = new_figure(Layout(1, 1, (4.0, 3.0)))
        ax.plot([0, 1, 2, 3], [0, 1, 2, 3], "o", label="points")
        ax.plot([0.1], [3.0], "s", label="a point under the legend")
        ax.set_ylim(-0.1, 3.1)
        ax.legend(loc="upper left")
        fig.draw_without_rendering()
        assert covered_marks(ax)
        clear_legends(fig)
        fig.draw_without_rendering()
        assert covered_marks(ax) == []
        assert ax.get_ylim()[0] == pytest.approx(-0.1) and ax.get_ylim()[1] > 3.1
        assert ax.lines[1].get_ydata().tolist() == [3.0]


def test_p_values_below_the_floor_are_drawn_as_floor_markers():
    result = make_h7()
    axes, text = drawn(fig5, result)
    ax = axes[0]
    floor_lines = [ln for ln in ax.lines if ln.get_marker() == FLOOR_MARKER and len(ln.get_xdata())]
    floored = sum(int((np.asarray(p) < fig5.P_FLOOR).sum())
                  for cal in (result.baseline, result.candidate)
                  for p in (cal.channel_ks_p, cal.channel_shapiro_p))
    assert floored >= 1                           # the hand-made KS p of 0 (underflow) at least
    assert sum(len(ln.get_ydata()) for ln in floor_lines) == floored
    assert all(np.all(ln.get_ydata() == fig5.P_FLOOR) for ln in floor_lines)
    measured = [ln for ln in ax.lines if ln not in floor_lines and ln.get_transform() is ax.transData]
    assert all(np.all(np.asarray(ln.get_ydata()) >= fig5.P_FLOOR) for ln in measured)
    assert any(ln.get_marker() == FLOOR_MARKER and "at the floor" in ln.get_label() for ln in ax.lines)
    assert f"are bounds, drawn as ↓ at {fig5.P_FLOOR:g}" in text.caption


def test_an_underflowed_p_is_written_as_a_bound():
    assert p_text(0.0).startswith("p < ") and p_text(0.00125) == "p = 0.00125"
    text = draw_text(fig2, dataclasses.replace(make_h1(), ks_p=0.0))
    assert "KS p < " in text.title and "= <" not in text.title


def test_zoomed_axes_are_said_in_the_caption_and_on_the_axis():
    with theme():
        _, (a, b) = new_figure(Layout(1, 2, (6.0, 3.0)))
        a.plot([0, 1], [23.2, 24.8])
        a.set_ylabel("AP (%)")
        b.plot([0, 1], [0.0, 24.8])
        assert mark_zoomed({"(a)": a, "(b)": b}) == "(a): y axis zoomed to the data, not from 0."
        assert a.get_ylabel() == f"AP (%){ZOOMED}" and ZOOMED not in b.get_ylabel()
        assert mark_zoomed({"(b)": b}) == ""
    text = draw_text(fig6, make_runs(), "brick")  # Pixel AP 50–54%: a cut axis with lines
    assert "(a), (b): y axes zoomed to the data, not from 0." in text.caption
    assert "a description" in text.title and "best" not in text.title


def test_fig3_shows_the_ratio_of_the_means_with_its_interval():
    result = make_h1()
    axes, text = drawn(fig3, result)
    ax = axes[2]
    (points,) = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert points.get_xdata().tolist() == [result.gradient_ratio.estimate,
                                           result.interior_gradient_ratio.estimate]
    (bars,) = [c for c in ax.collections if c.get_segments()]
    spans = sorted((seg[0][0], seg[1][0]) for seg in bars.get_segments())
    expected = sorted((iv.low, iv.high) for iv in (result.gradient_ratio,
                                                  result.interior_gradient_ratio))
    assert np.allclose(spans, expected)
    low, high = ax.get_xlim()
    assert low < 1.0 < high and low < fig3.RATIO_THRESHOLD < high
    assert "(c): x axis zoomed" in text.caption
