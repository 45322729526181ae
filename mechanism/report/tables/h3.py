"""H3's tables: conditions with amplification, leakage, H3.training's NLL tail, the paired
baseline, the evidence and the context."""
from __future__ import annotations

from mechanism.analyzers.h3_gradient import H3Result
from mechanism.io.text import markdown_table
from mechanism.report.tables import evidence
from mechanism.report.tables.rows import checkpoint_text, interval_text, measurement_row
from mechanism.stats.bootstrap import PairedStat

RESULT = H3Result


def _condition_rows(result: H3Result) -> list[tuple[str, ...]]:
    rows = []
    for c in result.conditions:
        ratio = "—" if c.ratio is None else f"**{c.ratio.format('{:.2f}×')}**"
        amp = "—" if c.tail_weight == 0 else \
            c.amplification.format("{:.3g}×") if c.amplification is not None else "undefined"
        rows.append((f"**{c.label_for(result.own_tail_weight)}**", c.tail_gradient.format(),
                     c.nontail_gradient.format(), ratio, amp,
                     "—" if c.gini is None else c.gini.format("{:.3f}"),
                     "—" if c.nontail_share is None else c.nontail_share.format("{:.3f}")))
    return rows


def _paired_cells(name: str, stat: PairedStat | None) -> tuple[str, str, str, str]:
    if stat is None:
        return (name, "—", "—", "undefined (see note)")
    return (name, *(i.format("{:.3g}") for i in (stat.baseline, stat.candidate, stat.difference)))


def _paired_rows(result: H3Result) -> list[tuple[str, str, str, str]]:
    p = result.paired
    rows = [_paired_cells(f"Ratio, {c.label}", s) for c, s in zip(result.conditions, p.ratio)]
    rows += [_paired_cells(f"Amplification, {c.label}", s)
             for c, s in zip(result.conditions, p.amplification) if c.tail_weight > 0]
    return rows


def markdown(result: H3Result) -> str:
    """The study's H3 table (with amplification and non-tail share per condition), H3.training's
    NLL tail, the paired table (with a baseline), the evidence and the context."""
    c = result.context
    parts = [markdown_table(["Condition", "Tail gradient", "Non-tail gradient", "Ratio",
                             "Amplification (ratio / ratio at λ=0)", "Gini",
                             "Non-tail share of Σg"], _condition_rows(result)), "",
             f"N/k = {c.n_patches}/{c.k} = {result.theoretical_amplification:.3g} (a definition). "
             "At λ = 1 the non-tail share is the leakage: gradient that reaches patches only "
             "through the spatial context (0 for non-interacting patches).", ""]
    if result.tail_excess is not None:
        t = result.tail_excess
        parts += [f"NLL tail of normal patches (H3.training): mean top-k NLL − mean NLL per good "
                  f"test image, nats/dim, {result.tail_excess_images} images × S = "
                  f"{result.tail_excess_seeds} seed pairs (interval over seeds × images):", "",
                  markdown_table(["baseline", "candidate", "difference (candidate − baseline)"],
                                 [[i.format("{:.4f}") for i in (t.baseline, t.candidate,
                                                                t.difference)]]), ""]
    if result.paired is not None:
        p = result.paired
        parts += [f"Paired with the baseline ({p.baseline_checkpoint}) on the same images "
                  "and resamples, each model with its own tail of k patches:", "",
                  markdown_table(["measurement", f"baseline (λ = {p.baseline_tail_weight:g})",
                                  "candidate", "difference (candidate − baseline)"],
                                 _paired_rows(result)), ""]
        if p.note:
            parts += [f"Note: {p.note}", ""]
    parts += [evidence.markdown(result.evidence), ""]
    notes = "; ".join(n for x in result.conditions
                      for n in (x.ratio_note, x.gini_note, x.amplification_note) if n)
    parts.append(
        f"Context: {checkpoint_text(c)} (own λ = {result.own_tail_weight:g}); category "
        f"{c.category}, split {c.split}, {c.n_images} images; grid {c.grid_h}×{c.grid_w} "
        f"(N = {c.n_patches}), tail k = {c.k} per image (r = {c.top_k_ratio:g}; the top-k "
        f"patches by the checkpoint's NLL); seed {c.seed}; {interval_text(c.n_boot, c.n_seeds)}. "
        f"Gradient unit: {result.gradient_unit}." + (f" Notes: {notes}." if notes else ""))
    return "\n".join(parts)


def csv_rows(result: H3Result) -> list[dict]:
    """One row per measurement: ``measurement, tail_weight, estimate, ci_low, ci_high, detail``;
    then the claims, identities and the verdict."""
    rows = []
    for c in result.conditions:
        lam = c.tail_weight
        rows += [measurement_row("tail_gradient", c.tail_gradient, "mean ‖∂L/∂x‖ per tail patch",
                                 tail_weight=lam),
                 measurement_row("nontail_gradient", c.nontail_gradient,
                                 "mean ‖∂L/∂x‖ per non-tail patch", tail_weight=lam),
                 measurement_row("ratio", c.ratio, c.ratio_note, tail_weight=lam),
                 measurement_row("gini", c.gini, c.gini_note, tail_weight=lam),
                 measurement_row("nontail_share", c.nontail_share, "share of Σg on non-tail patches",
                                 tail_weight=lam)]
        if lam > 0:
            rows += [measurement_row("amplification", c.amplification, c.amplification_note,
                                     tail_weight=lam),
                     measurement_row("tail_gain", c.tail_gain, "tail gradient at λ / at λ = 0",
                                     tail_weight=lam)]
    rows.append(measurement_row("theoretical_amplification", result.theoretical_amplification,
                                "N/k", tail_weight=None))
    if result.tail_excess is not None:
        rows += [measurement_row(f"tail_excess_{role}", getattr(result.tail_excess, role),
                                 f"mean top-k NLL − mean NLL, {result.tail_excess_images} good "
                                 "test images", tail_weight=None)
                 for role in ("baseline", "candidate", "difference")]
    if result.paired is not None:
        p = result.paired
        named = [(f"paired_{kind}", c.tail_weight, s) for kind, stats in
                 (("ratio", p.ratio), ("amplification", p.amplification))
                 for c, s in zip(result.conditions, stats) if kind == "ratio" or c.tail_weight > 0]
        for name, weight, stat in named:
            if stat is None:
                rows.append(measurement_row(name, None, p.note, tail_weight=weight))
                continue
            rows += [measurement_row(f"{name}_{role}", getattr(stat, role), tail_weight=weight)
                     for role in ("baseline", "candidate", "difference")]
    return rows + [{**row, "tail_weight": None} for row in evidence.csv_rows(result.evidence)]
