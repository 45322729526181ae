"""A study's contrasts: per category and the macro mean, each metric's paired difference."""
from __future__ import annotations

from mechanism.eval.macro_effect import MacroContrast, StudyContrasts
from mechanism.eval.metrics.detection import METRIC_LABELS
from mechanism.eval.observed_effect import OBSERVED_METRICS
from mechanism.io.text import markdown_table, plural
from mechanism.report.tables.observed_effect import ROLES, format_points
from mechanism.stats.bootstrap import PairedStat

RESULT = StudyContrasts
MACRO = "macro mean"


def _levels(p: PairedStat) -> str:
    return f"{p.baseline.estimate:.2%} → {p.candidate.estimate:.2%}"


def _macro_counts(c: MacroContrast) -> str:
    """The macro row's seeds and images: the categories' own, as a range when they differ."""
    def span(values: list[int]) -> str:
        return f"{min(values)}" if min(values) == max(values) else f"{min(values)}–{max(values)}"
    return (f"{span([e.n_seeds for e in c.effects])} × "
            f"{span([e.n_good + e.n_defective for e in c.effects])} per category")


def contrast_markdown(c: MacroContrast) -> str:
    """One row per category and the macro mean; cells are candidate − baseline in points."""
    header = ["category", "Pixel AP (baseline → candidate)",
              *(f"Δ {METRIC_LABELS[k]}" for k in OBSERVED_METRICS), "seeds × test images"]
    rows = [[e.category, _levels(e.metrics["pixel_ap"]),
             *(format_points(e.metrics[k].difference) for k in OBSERVED_METRICS),
             f"{e.n_seeds} × {e.n_good + e.n_defective}"] for e in c.effects]
    if c.macro is not None:
        rows.append([f"**{MACRO}** ({plural(len(c.effects), 'category', 'categories')})",
                     _levels(c.macro["pixel_ap"]),
                     *(f"**{format_points(c.macro[k].difference)}**" for k in OBSERVED_METRICS),
                     _macro_counts(c)])
    text = markdown_table(header, rows) if rows else "No category has this contrast."
    note = f"\n\n{c.note}" if c.note else ""
    return f"{text}\n\nΔ = ({c.candidate}) − ({c.baseline}), 95% intervals over seeds × images.{note}"


def markdown(result: StudyContrasts) -> str:
    return "\n\n".join(f"### {c.name}\n\n{contrast_markdown(c)}" for c in result.contrasts)


def csv_rows(result: StudyContrasts) -> list[dict]:
    """One row per contrast × (category or macro mean) × metric."""
    out = []
    for c in result.contrasts:
        blocks = [(e.category, e.n_seeds, e.n_good + e.n_defective, e.metrics) for e in c.effects]
        if c.macro is not None:
            blocks.append((MACRO, None, None, c.macro))
        for category, n_seeds, n_images, metrics in blocks:
            for key in OBSERVED_METRICS:
                row = {"contrast": c.name, "category": category, "metric": key,
                       "n_seeds": n_seeds, "n_images": n_images}
                for role in ROLES:
                    iv = getattr(metrics[key], role)
                    row.update({role: iv.estimate, f"{role}_low": iv.low, f"{role}_high": iv.high})
                out.append(row)
    return out
