"""The report's sweep sections: the λ and r ablations (best value by measured Pixel AP) and the
random-k control (SPEC §6), from a sweep's runs."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from mechanism.eval.metrics.detection import METRIC_LABELS
from mechanism.io.text import markdown_table
from mechanism.stats.summary import MetricSummary
from mechanism.sweep.results import METRICS, SweepRun, summarize_sweep

PARAM_LABELS = {"tail_weight": "λ (tail weight)", "tail_top_k_ratio": "r (top-k ratio)"}


@dataclass(frozen=True)
class Ablation:
    """One swept parameter: metrics per value over seeds, and the best value."""
    param: str
    fixed: str                                   # the settings held fixed, e.g. "r = 0.02, top-k"
    values: dict[float, dict[str, MetricSummary]]
    best: float                                  # highest mean Pixel AP (ties: the smaller value)

    def markdown(self) -> str:
        rows = [[("**" + f"{v:g}" + "**") if v == self.best else f"{v:g}",
                 *(m[name].format_percent() for name in METRICS)] for v, m in self.values.items()]
        single = all(m["pixel_ap"].n == 1 for m in self.values.values())
        caution = (" One training seed per value: differences smaller than the seed-to-seed spread "
                   "are not resolved, so the best value is a point estimate, not a finding."
                   if single else "")
        return (markdown_table([PARAM_LABELS[self.param], *(METRIC_LABELS[n] for n in METRICS)], rows)
                + f"\n\nHeld fixed: {self.fixed}. Mean ± std over training seeds (n = seeds); "
                  f"bold: the best value by mean Pixel AP, {self.best:g}.{caution}")


def _fixed(runs: list[SweepRun], param: str) -> str:
    other = "top_k_ratio" if param == "tail_weight" else "tail_weight"
    name = "r" if other == "top_k_ratio" else "λ"
    values = sorted({getattr(r, other) for r in runs})
    return f"{name} = {', '.join(f'{v:g}' for v in values)}, top-k selection"


def ablation(runs: list[SweepRun], param: str, category: str) -> Ablation | None:
    """The ablation of ``param`` (top-k selection runs of ``category``), or None if not swept."""
    mine = [r for r in runs if (r.param, r.selection, r.category) == (param, "topk", category)]
    if not mine:
        return None
    values = summarize_sweep(mine, param, category)
    best = max(values, key=lambda v: (values[v]["pixel_ap"].mean, -v))
    return Ablation(param, _fixed(mine, param), values, best)


@dataclass(frozen=True)
class ControlRow:
    """Top-k vs random-k selection at one (λ, r): each metric over seeds, and the difference."""
    tail_weight: float
    top_k_ratio: float
    topk: dict[str, MetricSummary]
    random: dict[str, MetricSummary]

    def difference(self, metric: str) -> float:
        """Mean top-k minus mean random-k, fraction."""
        return self.topk[metric].mean - self.random[metric].mean


def _summaries(runs: list[SweepRun]) -> dict[str, MetricSummary]:
    return {metric: MetricSummary.of([getattr(r, metric) for r in runs]) for metric in METRICS}


def random_control(runs: list[SweepRun], category: str) -> list[ControlRow]:
    """Every (λ, r) trained with random-k selection, beside the top-k runs of the same (λ, r).

    A configuration trained in two sweeps (e.g. λ = 0.7, r = 0.02 in both the λ and the r sweep)
    counts once per seed; the runs are deterministic, so the copies agree.
    """
    groups: dict[tuple[float, float, str], dict[int, SweepRun]] = defaultdict(dict)
    for r in runs:
        if r.category == category:
            groups[(r.tail_weight, r.top_k_ratio, r.selection)].setdefault(r.seed, r)
    rows = []
    for (lam, ratio, selection), random_runs in sorted(groups.items()):
        topk_runs = groups.get((lam, ratio, "topk"))
        if selection == "random" and topk_runs:
            rows.append(ControlRow(lam, ratio, _summaries(list(topk_runs.values())),
                                   _summaries(list(random_runs.values()))))
    return rows


def control_markdown(rows: list[ControlRow]) -> str:
    """The random-k control table: top-k vs random-k Pixel AP and Image AUROC per (λ, r)."""
    lines = []
    for row in rows:
        cells = [f"{row.tail_weight:g}", f"{row.top_k_ratio:g}"]
        for metric in ("pixel_ap", "image_auroc"):
            cells += [row.topk[metric].format_percent(), row.random[metric].format_percent(),
                      f"{100 * row.difference(metric):+.2f} pts"]
        lines.append(cells)
    return markdown_table(["λ", "r", "Pixel AP top-k", "Pixel AP random-k", "Δ", "Image AUROC top-k",
                           "Image AUROC random-k", "Δ"], lines)
