"""H1's tables: edge distances and image gradients of the tail, the paired baseline table,
the verdict and the context."""
from __future__ import annotations

from mechanism.analyzers.h1_edge import H1Result
from mechanism.io.text import format_p, markdown_table
from mechanism.report.tables.rows import interval_text, measurement_row

RESULT = H1Result


def _table_rows(r: H1Result) -> list[tuple[str, str]]:
    mean = r.tail_distance_mean
    ci = "" if mean.low is None else f" (mean's 95% CI [{mean.low:.3f}, {mean.high:.3f}])"
    ratio = "—" if r.gradient_ratio is None else f"**{r.gradient_ratio.format('{:.3f}×')}**"
    return [
        ("Edge distance (tail), cells", f"{mean.estimate:.3f} ± {r.tail_distance_std:.3f}{ci}"),
        ("Edge distance (uniform), cells", f"{r.uniform_distance_mean:.3f}"),
        ("KS p-value (one-sample, exact discrete law)",
         f"{format_p(r.ks_p)} (D = {r.ks_statistic:.3f})"),
        ("Image gradient (tail)", f"{r.gradient_tail_mean:.4f}"),
        ("Image gradient (non-tail)", f"{r.gradient_nontail_mean:.4f}"),
        ("**Gradient ratio** (tail / non-tail)", ratio),
        ("Mann-Whitney p-value", "—" if r.mw_p is None else format_p(r.mw_p)),
        ("Cliff's δ (tail vs non-tail gradient)", r.cliffs_delta.format("{:.3f}")),
    ]


def _paired_rows(r: H1Result) -> list[tuple[str, str, str, str]]:
    p = r.paired
    rows = [("Edge distance (tail) mean, cells", *(i.format("{:.3f}") for i in (
        p.tail_distance_mean.baseline, p.tail_distance_mean.candidate,
        p.tail_distance_mean.difference)))]
    if p.gradient_ratio is None:
        rows.append(("Gradient ratio", "—", "—", p.note))
    else:
        rows.append(("Gradient ratio", *(i.format("{:.3f}") for i in (
            p.gradient_ratio.baseline, p.gradient_ratio.candidate, p.gradient_ratio.difference))))
    return rows


def markdown(r: H1Result) -> str:
    """The measurement table, the verdict, the paired table (with a baseline) and the context."""
    c = r.context
    parts = [markdown_table(["measurement", "value"], _table_rows(r)), "",
             f"**Verdict: {r.verdict.value}** — {r.verdict_reason}", ""]
    if r.paired is not None:
        lam = f"λ = {r.paired.baseline_tail_weight:g}"
        parts += [f"Paired with the baseline ({r.paired.baseline_checkpoint}) on the same "
                  "images with the same k:", "",
                  markdown_table(["measurement", f"baseline ({lam})", "candidate",
                                  "difference (candidate − baseline)"], _paired_rows(r)), ""]
    notes = f" {r.gradient_note}" if r.gradient_note else ""
    parts.append(
        f"Context: checkpoint {c.checkpoint}; category {c.category}, split {c.split}, "
        f"{c.n_images} images; grid {c.grid_h}×{c.grid_w} (N = {c.n_patches}), tail k = {c.k} "
        f"per image (r = {c.top_k_ratio:g}); seed {c.seed}; {interval_text(c.n_boot)}. "
        f"KS: {r.ks_method}. Gradient: {r.gradient_method}.{notes}")
    return "\n".join(parts)


def csv_rows(r: H1Result) -> list[dict]:
    """One row per measurement; with a baseline, ``paired_<name>_<role>`` rows; the verdict last."""
    rows = [measurement_row("edge_distance_tail_mean", r.tail_distance_mean, "cells"),
            measurement_row("edge_distance_tail_std", r.tail_distance_std, "cells, population std"),
            measurement_row("edge_distance_uniform_mean", r.uniform_distance_mean, "cells, exact"),
            measurement_row("ks_statistic", r.ks_statistic, "D = max |F_n − F|"),
            measurement_row("ks_p", r.ks_p, r.ks_method),
            measurement_row("gradient_tail_mean", r.gradient_tail_mean, r.gradient_method),
            measurement_row("gradient_nontail_mean", r.gradient_nontail_mean,
                            "as gradient_tail_mean"),
            measurement_row("gradient_ratio", r.gradient_ratio, r.gradient_note),
            measurement_row("mann_whitney_p", r.mw_p, r.gradient_note),
            measurement_row("cliffs_delta", r.cliffs_delta)]
    if r.paired is not None:
        p = r.paired
        for name, paired in (("edge_distance_tail_mean", p.tail_distance_mean),
                             ("gradient_ratio", p.gradient_ratio)):
            if paired is None:
                rows.append(measurement_row(f"paired_{name}", None, p.note))
                continue
            rows += [measurement_row(f"paired_{name}_{role}", getattr(paired, role))
                     for role in ("baseline", "candidate", "difference")]
    rows.append(measurement_row("verdict", r.verdict.value, r.verdict_reason))
    return rows
