"""fig6 — tail-weight (λ) ablation: test Pixel AP and Image AUROC against λ from a sweep's runs
(top-k selection, one category), mean ± std over training seeds with every seed shown."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.axes import Axes

from mechanism.eval.metrics.detection import METRIC_LABELS
from mechanism.figures.style import (BASELINE_COLOR, TAIL_COLOR, FigureText, Layout, seeds_label,
                                     mark_zoomed)
from mechanism.sweep.results import SweepRun, summarize_sweep

LAYOUT = Layout(1, 2, (9.0, 4.0))
PARAM = "tail_weight"
SELECTION = "topk"
METRICS = ("pixel_ap", "image_auroc")


def ablation_runs(runs: Sequence[SweepRun], category: str) -> list[SweepRun]:
    """The runs fig6 draws: λ swept with top-k selection on ``category``."""
    return [r for r in runs if (r.param, r.selection, r.category) == (PARAM, SELECTION, category)]


def _draw_metric(ax: Axes, runs: list[SweepRun], summary: dict, metric: str, name: str) -> None:
    """One metric in percent against λ: mean ± std and each seed, or the single seed's line."""
    lambdas = np.array(sorted(summary))
    mean = np.array([100 * summary[v][metric].mean for v in lambdas])
    counts = [summary[v][metric].n for v in lambdas]
    label = seeds_label(counts)
    if max(counts) == 1:
        ax.plot(lambdas, mean, "o-", color=TAIL_COLOR, ms=6, lw=1, label=label)
    else:
        std = np.array([100 * (summary[v][metric].std or 0.0) for v in lambdas])
        ax.errorbar(lambdas, mean, yerr=std, fmt="o-", color=TAIL_COLOR, ms=6, capsize=4, lw=1,
                    label=label)
        ax.plot([r.tail_weight for r in runs], [100 * getattr(r, metric) for r in runs], "o",
                ms=3.5, color=BASELINE_COLOR, alpha=0.8, zorder=3, label="one training seed")
    ax.margins(x=0.08, y=0.15)
    ax.set_xticks(lambdas, [f"{v:g}" for v in lambdas])
    ax.set_xlabel("tail weight λ")
    ax.set_ylabel(f"{name} (%)")
    ax.legend(loc="best")


def draw(runs: Sequence[SweepRun], category: str, axes: Sequence[Axes]) -> FigureText:
    """Draw fig6 on ``LAYOUT.panels`` axes: (a) Pixel AP, (b) Image AUROC against λ, in percent.

    Raises:
        MechanismError: no λ run with top-k selection on ``category``, or two runs of one λ
            and seed (``summarize_sweep``).
    """
    summary = summarize_sweep(list(runs), PARAM, category, SELECTION)
    chosen = ablation_runs(runs, category)
    for ax, metric, letter in zip(axes, METRICS, "ab"):
        name = METRIC_LABELS[metric]
        _draw_metric(ax, chosen, summary, metric, name)
        ax.set_title(f"({letter}) {name} vs λ")
    seeds = sorted({s["pixel_ap"].n for s in summary.values()})
    ratios = ", ".join(f"{r:g}" for r in sorted({r.top_k_ratio for r in chosen}))
    spread = ("Error bars: ± 1 sample std over seeds (ddof = 1; the seeds' spread, not a "
              "confidence interval), dots: each seed; lines join the per-λ means"
              if max(seeds) > 1 else
              "One training seed per λ: no interval, and the lines join single-seed values")
    caption = (f"Category {category}; one checkpoint per λ and training seed, top-k selection with "
               f"r = {ratios}; metrics on the test split. Seeds per λ: "
               f"{', '.join(str(n) for n in seeds)}; {len(chosen)} runs in all. {spread}. "
               f"{mark_zoomed(dict(zip(('(a)', '(b)'), axes)))} The highest mean is picked on the "
               f"test set it is shown on: a description, not evidence; the paired test of the "
               f"tail-aware loss against λ = 0 (seeds × images intervals) is the report's headline.")
    best = max(summary, key=lambda v: summary[v]["pixel_ap"].mean)
    return FigureText(f"Tail-weight ablation on {category} (a description): highest mean Pixel AP "
                      f"at λ = {best:g}, {summary[best]['pixel_ap'].format_percent()}", caption)
