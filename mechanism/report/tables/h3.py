"""H3's tables: conditions, amplification, the paired baseline, verdict and context."""
from __future__ import annotations

from mechanism.analyzers.h3_gradient import H3Result
from mechanism.io.text import markdown_table
from mechanism.report.tables.rows import interval_text, measurement_row
from mechanism.stats.bootstrap import PairedStat

RESULT = H3Result


def _condition_rows(result: H3Result) -> list[tuple[str, ...]]:
    rows = []
    for c in result.conditions:
        ratio = "—" if c.ratio is None else f"**{c.ratio.format('{:.2f}×')}**"
        gini_text = "—" if c.gini is None else c.gini.format("{:.3f}")
        rows.append((f"**{c.label}**", c.tail_gradient.format(), c.nontail_gradient.format(),
                     ratio, gini_text))
    return rows


def _amplification_lines(result: H3Result) -> list[str]:
    c, lam = result.context, result.tail_aware.tail_weight
    theory = f"theoretical N/k = {c.n_patches}/{c.k} = {result.theoretical_amplification:.3g}×"
    if result.amplification is None:
        amp = (f"- **Gradient amplification** (λ={lam:g} vs λ=0): undefined — "
               f"{result.amplification_note}; {theory}")
    else:
        amp = (f"- **Gradient amplification** (ratio at λ={lam:g} / ratio at λ=0): "
               f"**{result.amplification.format('{:.3g}×')}**, {theory}, measured = "
               f"{result.amplification_share:.0%} of theoretical")
    gain = ("undefined (tail gradient at λ=0 is exactly 0)" if result.tail_gain is None
            else result.tail_gain.format("{:.3g}×"))
    return [amp, f"- Tail gradient gain (tail gradient at λ={lam:g} / at λ=0): {gain}; "
                 f"exact for non-interacting patches: 1 − λ + λ·N/k = {result.tail_gain_theory:.3g}×"]


def _paired_cells(name: str, stat: PairedStat | None) -> tuple[str, str, str, str]:
    if stat is None:
        return (name, "—", "—", "undefined (see note)")
    return (name, *(i.format("{:.3g}") for i in (stat.baseline, stat.candidate, stat.difference)))


def _paired_rows(result: H3Result) -> list[tuple[str, str, str, str]]:
    rows = [_paired_cells(f"Ratio, {c.label}", s)
            for c, s in zip(result.conditions, result.paired.ratio)]
    rows.append(_paired_cells("Gradient amplification", result.paired.amplification))
    return rows


def markdown(result: H3Result) -> str:
    """The study's H3 table, amplification lines, the paired table (with a baseline), verdict
    and context."""
    c = result.context
    parts = [markdown_table(["Condition", "Tail gradient", "Non-tail gradient", "Ratio", "Gini"],
                            _condition_rows(result)), "", *_amplification_lines(result), ""]
    if result.paired is not None:
        p = result.paired
        parts += [f"Paired with the baseline ({p.baseline_checkpoint}) on the same images "
                  "and resamples, each model with its own tail of k patches:", "",
                  markdown_table(["measurement", f"baseline (λ = {p.baseline_tail_weight:g})",
                                  "candidate", "difference (candidate − baseline)"],
                                 _paired_rows(result)), ""]
        if p.note:
            parts += [f"Note: {p.note}", ""]
    parts += [f"**Verdict: {result.verdict.value}** — {result.verdict_reason}", ""]
    notes = "; ".join(n for x in result.conditions for n in (x.ratio_note, x.gini_note) if n)
    parts.append(
        f"Context: checkpoint {c.checkpoint}; category {c.category}, split {c.split}, "
        f"{c.n_images} images; grid {c.grid_h}×{c.grid_w} (N = {c.n_patches}), tail k = {c.k} "
        f"per image (r = {c.top_k_ratio:g}; the top-k patches by the checkpoint's NLL); "
        f"seed {c.seed}; {interval_text(c.n_boot)}. Gradient unit: {result.gradient_unit}."
        + (f" Notes: {notes}." if notes else ""))
    return "\n".join(parts)


def csv_rows(result: H3Result) -> list[dict]:
    """One row per measurement: ``measurement, tail_weight, estimate, ci_low, ci_high, detail``."""
    rows = []
    for c in result.conditions:
        lam = c.tail_weight
        rows += [measurement_row("tail_gradient", c.tail_gradient, "mean ‖∂L/∂x‖ per tail patch",
                                 tail_weight=lam),
                 measurement_row("nontail_gradient", c.nontail_gradient,
                                 "mean ‖∂L/∂x‖ per non-tail patch", tail_weight=lam),
                 measurement_row("ratio", c.ratio, c.ratio_note, tail_weight=lam),
                 measurement_row("gini", c.gini, c.gini_note, tail_weight=lam)]
    lam = result.tail_aware.tail_weight
    rows += [measurement_row("amplification", result.amplification, result.amplification_note,
                             tail_weight=lam),
             measurement_row("theoretical_amplification", result.theoretical_amplification, "N/k",
                             tail_weight=lam),
             measurement_row("amplification_share", result.amplification_share,
                             "amplification / (N/k)", tail_weight=lam),
             measurement_row("tail_gain", result.tail_gain, "tail gradient at λ / at λ = 0",
                             tail_weight=lam),
             measurement_row("tail_gain_theory", result.tail_gain_theory,
                             "1 − λ + λ·N/k (non-interacting patches)", tail_weight=lam)]
    if result.paired is not None:
        p = result.paired
        named = [("paired_ratio", c.tail_weight, s) for c, s in zip(result.conditions, p.ratio)]
        named.append(("paired_amplification", lam, p.amplification))
        for name, weight, stat in named:
            if stat is None:
                rows.append(measurement_row(name, None, p.note, tail_weight=weight))
                continue
            for role in ("baseline", "candidate", "difference"):
                rows.append(measurement_row(f"{name}_{role}", getattr(stat, role),
                                            tail_weight=weight))
    rows.append(measurement_row("verdict", result.verdict.value, result.verdict_reason,
                                tail_weight=None))
    return rows
