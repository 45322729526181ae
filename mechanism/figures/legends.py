"""Legends off the data: where a legend covers plotted data, its axis grows on the legend's side
until it does not (no data is moved or hidden). Reference lines spanning the axes (``axhline``,
``axvline``, ``axvspan``) are not data."""
from __future__ import annotations

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

GROW = 0.15          # share of the current axis range added per step
MAX_STEPS = 12       # growth steps before giving up
SAMPLES = 24         # display points per drawn line segment


def _in_data(artist: Artist, ax: Axes) -> bool:
    return artist.get_visible() and artist.get_transform().contains_branch(ax.transData)


def _sampled(points: np.ndarray, joined: bool) -> np.ndarray:
    """``(n, 2)`` display points, with each segment sampled when ``joined``."""
    points = points[np.isfinite(points).all(axis=1)]
    if not joined or len(points) < 2:
        return points
    t = np.linspace(0, 1, SAMPLES)[:, None, None]
    return (points[:-1] + t * (points[1:] - points[:-1])).reshape(-1, 2)


def data_points(ax: Axes) -> np.ndarray:
    """``(n, 2)`` display coordinates of the plotted data: markers, sampled lines, outlines of
    non-rectangular patches (histogram steps) and collections (error bars, bands, scatter)."""
    parts = [np.empty((0, 2))]
    for line in ax.lines:
        if _in_data(line, ax):
            joined = line.get_linestyle() not in ("None", "", " ")
            parts.append(_sampled(ax.transData.transform(line.get_xydata()), joined))
    for patch in ax.patches:
        if _in_data(patch, ax) and not isinstance(patch, Rectangle):
            parts.append(_sampled(patch.get_transform().transform(patch.get_path().vertices), True))
    for coll in ax.collections:
        if not _in_data(coll, ax):
            continue
        if isinstance(coll, PathCollection):
            parts.append(coll.get_offset_transform().transform(coll.get_offsets()))
        else:
            parts += [_sampled(coll.get_transform().transform(p.vertices), True)
                      for p in coll.get_paths()]
    return np.concatenate(parts)


def data_boxes(ax: Axes) -> list:
    """Display bounding boxes of the bars (rectangles in data coordinates)."""
    return [p.get_window_extent() for p in ax.patches
            if isinstance(p, Rectangle) and _in_data(p, ax) and p.get_height() != 0]


def covered(ax: Axes) -> int:
    """How many data points and bars of ``ax`` its legend covers (0 without a legend); the
    figure must have been drawn."""
    legend = ax.get_legend()
    if legend is None:
        return 0
    box = legend.get_window_extent().padded(-1)
    points = data_points(ax)
    inside = ((points[:, 0] > box.x0) & (points[:, 0] < box.x1)
              & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)).sum()
    return int(inside) + sum(int(box.overlaps(b)) for b in data_boxes(ax))


def _grow(ax: Axes) -> None:
    """Widen the y range by ``GROW`` on the side of the legend (log axes in log space)."""
    box, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
    upper = (box.y0 + box.y1) > (frame.y0 + frame.y1)
    log = ax.get_yscale() == "log"
    low, high = np.log10(ax.get_ylim()) if log else ax.get_ylim()
    step = GROW * (high - low)
    low, high = (low, high + step) if upper else (low - step, high)
    ax.set_ylim(*((10 ** low, 10 ** high) if log else (low, high)))


def clear_legends(fig: Figure) -> None:
    """Grow every axis whose legend covers data until it covers none (at most ``MAX_STEPS``
    steps); call it once the figure is complete (after ``style.annotate``)."""
    for _ in range(MAX_STEPS):
        fig.draw_without_rendering()
        crowded = [ax for ax in fig.axes if covered(ax)]
        if not crowded:
            return
        for ax in crowded:
            _grow(ax)
